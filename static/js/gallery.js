/* The gallery: short filter addresses, and the bulk bar: tick, shift-click a range, select all on the page; one confirmation to delete. */
$(function () {
  // Leave empty filters out of the address, so it stays short enough to read and share.
  $('#gallery-filters').on('submit', function () {
    $(this).find('input, select').filter(function () { return !this.value; }).prop('disabled', true);
  });

  var $boxes = $('#gallery input[name=image_ids]');
  if (!$boxes.length) { return; }
  var last = null;

  function update() {
    var n = $boxes.filter(':checked').length;
    $('#selected-count').text(n ? n + ' selected' : 'Tick images, or shift-click a range');
    $('#bulk-bar [data-needs-selection]').prop('disabled', n === 0);
    $('#select-all').text(n === $boxes.length ? 'Select none' : 'Select all on page');
  }

  $boxes.on('click', function (e) {
    var index = $boxes.index(this);
    if (e.shiftKey && last !== null && last !== index) {
      var from = Math.min(index, last), to = Math.max(index, last);
      $boxes.slice(from, to + 1).prop('checked', this.checked);
    }
    last = index;
    update();
  });
  $('#select-all').on('click', function () {
    $boxes.prop('checked', $boxes.filter(':not(:checked)').length > 0);
    last = null;
    update();
  });
  $('#bulk-bar [data-confirm-click]').on('click', function (e) {
    if (!window.confirm($(this).data('confirm-click'))) { e.preventDefault(); }
  });
  update();
});
