/* The progress page: poll the JSON API about once a second until the status is final. */
$(function () {
  var $box = $('#generation');
  if (!$box.length) { return; }
  var api = $box.data('api');
  var FINAL = ['succeeded', 'failed', 'canceled'];
  var LABELS = {queued: 'Waiting in the queue', running: 'Painting', succeeded: 'Done', failed: 'Failed', canceled: 'Canceled'};
  var shownImages = $('#images').children().length;

  function statusText(s) {
    if (s.status === 'queued') {
      return s.queue_position ? 'Waiting in the queue: position ' + s.queue_position : LABELS.queued + '…';
    }
    if (s.status === 'running') {
      var text = 'Painting: step ' + s.step + ' of ' + s.total_steps;
      if (s.eta_seconds !== null) { text += ' · about ' + Math.ceil(s.eta_seconds) + ' s left'; }
      return text;
    }
    return LABELS[s.status] || s.status;
  }

  function render(s) {
    $box.attr('data-status', s.status);
    $('#status-text').text(statusText(s));
    var pct = s.status === 'succeeded' ? 100 : (s.total_steps ? Math.round(100 * s.step / s.total_steps) : 0);
    $('#progress-bar').css('width', pct + '%').text(s.status === 'running' ? pct + '%' : '');
    $('#progress').attr('aria-valuenow', pct).prop('hidden', FINAL.indexOf(s.status) >= 0);
    if (s.preview_url && s.status === 'running') {
      if ($('#preview').attr('src') !== s.preview_url) { $('#preview').attr('src', s.preview_url); }
      $('#preview-box').prop('hidden', false);
    }
    $('#notice').text(s.notice || '').prop('hidden', !s.notice);
    if (s.error) { $('#error').text(s.error).prop('hidden', false); }
    if (s.status === 'succeeded' && shownImages === 0) {
      $('#preview-box').prop('hidden', true);
      $.each(s.images, function (i, img) {
        var $img = $('<img class="card-img-top">').attr({src: img.thumbnail_url, alt: 'Result ' + (i + 1)});
        $('<a class="card">').attr('href', img.page_url).append($img).appendTo('#images');
      });
      shownImages = s.images.length;
    }
    if (FINAL.indexOf(s.status) >= 0) { $('#cancel-form').prop('hidden', true); $('#preview-box').prop('hidden', true); }
  }

  function poll() {
    $.getJSON(api).done(function (s) {
      render(s);
      if (FINAL.indexOf(s.status) < 0) { setTimeout(poll, 1000); }
    }).fail(function (xhr) {
      if (xhr.status === 404) { $('#status-text').text('This generation is gone.'); return; }
      setTimeout(poll, 3000);  // the server is busy or restarting: keep trying, more slowly
    });
  }

  if (FINAL.indexOf($box.data('status')) < 0) { poll(); } else { $.getJSON(api).done(render); }
});
