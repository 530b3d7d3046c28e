/* Site-wide glue: send the CSRF token with every jQuery POST (the in-page studio submit and cancel rely on it). */
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
