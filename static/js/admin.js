/* Admin image list: tick every box at once, and confirm the bulk delete. */
$(function () {
  $('#select-all').on('click', function () {
    var boxes = $('#admin-images input[name=image_ids]');
    boxes.prop('checked', boxes.filter(':not(:checked)').length > 0);
  });
  $('[data-confirm-click]').on('click', function (e) {
    if (!window.confirm($(this).data('confirm-click'))) { e.preventDefault(); }
  });
});
