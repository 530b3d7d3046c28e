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

  // Copy buttons: <button data-copy="#id"> copies that input's value (or that element's text). The clipboard API
  // needs a secure context (https, or localhost); elsewhere the text is selected and copied the old way.
  function copied($button, ok) {
    var label = $button.data('label') || $button.text();
    $button.data('label', label).text(ok ? 'Copied' : 'Press Ctrl+C');
    $('#copy-status').text(ok ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C to copy.');
    setTimeout(function () { $button.text(label); }, 2000);
  }
  function copyBySelecting(target) {
    if (target.select) { target.select(); }
    else { window.getSelection().selectAllChildren(target); }
    try { return document.execCommand('copy'); } catch (e) { return false; }
  }
  $(document).on('click', '[data-copy]', function () {
    var $button = $(this);
    var target = $($button.data('copy'))[0];
    if (!target) { return; }
    var text = target.value !== undefined && target.select ? target.value : $(target).text().trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied($button, true); },
                                               function () { copied($button, copyBySelecting(target)); });
    } else {
      copied($button, copyBySelecting(target));
    }
  });
});
