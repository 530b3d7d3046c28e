/* Site-wide glue: send the CSRF token with every jQuery POST (kept for the in-page studio and bulk actions to come). */
$(function () {
  var token = $('meta[name="csrf-token"]').attr('content');
  $.ajaxSetup({
    beforeSend: function (xhr, settings) {
      if (!/^(GET|HEAD|OPTIONS)$/i.test(settings.type)) { xhr.setRequestHeader('X-CSRFToken', token); }
    }
  });
  $('form[data-confirm]').on('submit', function (e) {
    if (!window.confirm($(this).data('confirm'))) { e.preventDefault(); }
  });
});
