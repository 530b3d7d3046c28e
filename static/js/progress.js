/* Live progress: Easel.watchGeneration polls GET /api/generations/<id> about once a second until the status is
   final (the progress page and each try in the studio use it); then the progress page itself. */
window.Easel = window.Easel || {};
(function (Easel) {
  var FINAL = ['succeeded', 'failed', 'canceled'];
  var LABELS = {queued: 'Waiting in the queue', running: 'Painting', succeeded: 'Done', failed: 'Failed', canceled: 'Canceled'};

  Easel.isFinal = function (status) { return FINAL.indexOf(status) >= 0; };

  Easel.statusText = function (s) {
    if (s.status === 'queued') {
      var text = s.queue_position ? 'Waiting in the queue: position ' + s.queue_position : LABELS.queued + '…';
      if (s.queue_position && s.eta_seconds !== null && s.eta_seconds !== undefined) {
        text += ' · about ' + Math.ceil(s.eta_seconds) + ' s';
      }
      return text;
    }
    if (s.status === 'running') {
      var painting = 'Painting: step ' + s.step + ' of ' + s.total_steps;
      if (s.eta_seconds !== null && s.eta_seconds !== undefined) { painting += ' · about ' + Math.ceil(s.eta_seconds) + ' s left'; }
      return painting;
    }
    return LABELS[s.status] || s.status;
  };

  Easel.percent = function (s) {
    return s.status === 'succeeded' ? 100 : (s.total_steps ? Math.round(100 * s.step / s.total_steps) : 0);
  };

  /* Poll ``api`` and call ``onState(state)`` each time until the status is final; ``onGone()`` on a 404.
     Returns a function that stops the polling. */
  Easel.watchGeneration = function (api, onState, onGone) {
    var stopped = false;
    function poll() {
      if (stopped) { return; }
      $.getJSON(api).done(function (s) {
        if (stopped) { return; }
        onState(s);
        if (!Easel.isFinal(s.status)) { setTimeout(poll, 1000); }
      }).fail(function (xhr) {
        if (xhr.status === 404) { if (onGone) { onGone(); } return; }
        setTimeout(poll, 3000);  // the server is busy or restarting: keep trying, more slowly
      });
    }
    poll();
    return function () { stopped = true; };
  };
})(window.Easel);

/* The progress page. */
$(function () {
  var $box = $('#generation');
  if (!$box.length) { return; }
  var shownImages = $('#images').children().length;
  var prompt = $box.data('prompt');

  function render(s) {
    $box.attr('data-status', s.status);
    $('#status-text').text(Easel.statusText(s));
    var pct = Easel.percent(s);
    $('#progress-bar').css('width', pct + '%').text(s.status === 'running' ? pct + '%' : '');
    $('#progress').attr('aria-valuenow', pct).prop('hidden', Easel.isFinal(s.status));
    if (s.preview_url && s.status === 'running') {
      if ($('#preview').attr('src') !== s.preview_url) { $('#preview').attr('src', s.preview_url); }
      $('#preview-box').prop('hidden', false);
    }
    $('#notice').text(s.notice || '').prop('hidden', !s.notice);
    if (s.error) { $('#error').text(s.error).prop('hidden', false); }
    $('#hint').text(s.hint || '').prop('hidden', !s.hint);
    if (s.status === 'succeeded' && shownImages === 0) {
      $('#preview-box').prop('hidden', true);
      $.each(s.images, function (i, img) {
        var $img = $('<img class="card-img-top">').attr({src: img.thumbnail_url, alt: prompt})
          .toggleClass('held', !!img.held).attr('title', img.held_reason || null);
        $('<a class="card">').attr('href', img.page_url).append($img).appendTo('#images');
      });
      shownImages = s.images.length;
    }
    if (Easel.isFinal(s.status)) { $('#cancel-form').prop('hidden', true); $('#preview-box').prop('hidden', true); }
  }

  var api = $box.data('api');
  function gone() { $('#status-text').text('This generation is gone.'); }
  if (!Easel.isFinal($box.data('status'))) { Easel.watchGeneration(api, render, gone); } else { $.getJSON(api).done(render); }
});
