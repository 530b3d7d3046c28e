/* The studio's "my queue" panel and its tries: each try (a generation started here, or found running on load)
   shows its progress, preview and results beside the form, polled by Easel.watchGeneration (progress.js).
   The queue panel is my queued and running generations from GET /api/queue, with position, ETA and cancel. */
window.Easel = window.Easel || {};
$(function () {
  var $bench = $('#workbench');
  if (!$bench.length) { return; }
  $bench.prop('hidden', false);
  var queueUrl = $bench.data('queue-url');
  var tries = {};  // generation id -> {$card, stop}
  var queueTimer = null;
  var STAGE = 256;  // the longest side of a try's preview and pictures, in CSS pixels

  function describe(params) {
    return params.model + ' · ' + params.width + '×' + params.height + ' · ' + params.steps + ' steps · guidance ' +
      params.guidance + ' · seed ' + params.seed;
  }

  // A picture takes the place and size its live preview had (a small one at a whole multiple, pixelated).
  function resultFigure(state, img) {
    var prompt = state.params.prompt;
    var size = Easel.shownSize(img.width, img.height, STAGE);
    var small = Math.max(img.width, img.height) <= Easel.SMALL_PICTURE;
    var $figure = $('<figure class="m-0 result">').attr('data-image-id', img.id);
    $('<a class="d-block">').attr('href', img.page_url).append(
      $('<img>').attr({src: small ? img.url : img.thumbnail_url, alt: prompt, width: size.width, height: size.height})
        .toggleClass('pixelated', size.pixelated)
        .toggleClass('held', !!img.held).attr('title', img.held_reason || null)
    ).appendTo($figure);
    var $actions = $('<figcaption class="pt-2 d-grid gap-1">').appendTo($figure);
    if (img.timelapse_url) {  // on demand, in the picture's own place: the card does not grow
      $('<button type="button" class="btn btn-sm btn-outline-secondary play-timelapse" aria-pressed="false">')
        .text('▶ Play timelapse').on('click', function () {
          Easel.toggleTimelapse($(this), $figure.find('img'), img.timelapse_url);
        }).appendTo($actions);
    }
    $('<button type="button" class="btn btn-sm btn-outline-secondary use-seed">')
      .text('Use seed ' + img.seed).attr('aria-label', 'Use seed ' + img.seed + ' in the form')
      .on('click', function () { Easel.useSeed(img.seed); }).appendTo($actions);
    $('<button type="button" class="btn btn-sm btn-outline-primary reuse-settings">')
      .text('Reuse settings').attr('aria-label', 'Reuse all settings of this picture (seed ' + img.seed + ')')
      .on('click', function () { Easel.reuseSettings(state.params, img.seed); }).appendTo($actions);
    return $figure;
  }

  function newCard(state) {
    var $card = $('<article class="card mb-3 try">').attr({'data-id': state.id, 'data-status': state.status});
    var $body = $('<div class="card-body">').appendTo($card);
    $('<h3 class="h6 mb-1 text-truncate try-prompt">').text(state.params.prompt).attr('title', state.params.prompt).appendTo($body);
    $('<p class="small text-body-secondary mb-2">').text(describe(state.params)).appendTo($body);
    // The preview and the pictures share one place (.try-stage holds both in one grid cell), reserved from the start
    // and above the status lines, which change while it runs.
    var size = Easel.shownSize(state.width, state.height, STAGE);
    var $stage = $('<div class="try-stage mb-2">').appendTo($body);
    $('<div class="try-preview-box">').css({width: size.width + 'px', height: size.height + 'px'}).append(
      $('<img class="try-preview pixelated" hidden>').attr({alt: 'Preview of: ' + state.params.prompt,
                                                            width: size.width, height: size.height})
    ).appendTo($stage);
    $('<div class="try-images">').appendTo($stage);
    $('<p class="mb-2 try-status" aria-live="polite">').appendTo($body);
    $('<div class="progress mb-2" role="progressbar" aria-valuemin="0" aria-valuemax="100">')
      .attr('aria-label', 'Progress of ' + state.params.prompt)
      .append($('<div class="progress-bar progress-bar-striped progress-bar-animated"></div>').css('width', '0%')).appendTo($body);
    $('<p class="small text-body-secondary try-notice" hidden>').appendTo($body);
    $('<p class="small alert alert-info py-1 px-2 mb-2 try-hint" hidden>').appendTo($body);
    $('<div class="alert alert-danger py-2 try-error" role="alert" hidden>').appendTo($body);
    $('<a class="small">').attr('href', state.page_url).text('Progress page').appendTo($body);
    return $card;
  }

  function render(state) {
    var t = tries[state.id];
    if (!t) { return; }
    var $card = t.$card;
    var final = Easel.isFinal(state.status);
    $card.attr('data-status', state.status);
    $card.find('.try-status').text(Easel.statusText(state));
    var pct = Easel.percent(state);
    $card.find('.progress').attr('aria-valuenow', pct).prop('hidden', final)
      .find('.progress-bar').css('width', pct + '%');
    $card.find('.try-notice').text(state.notice || '').prop('hidden', !state.notice);
    if (state.error) { $card.find('.try-error').text(state.error).prop('hidden', false); }
    if (state.hint) { $card.find('.try-hint').text(state.hint).prop('hidden', false); }
    var $preview = $card.find('.try-preview');
    if (state.status === 'running' && state.preview_url) {
      if ($preview.attr('src') !== state.preview_url) { $preview.attr('src', state.preview_url); }
      $preview.prop('hidden', false);
    }
    if (final) {
      $preview.prop('hidden', true).removeAttr('src');
      $card.find('.try-preview-box').prop('hidden', true);
    }
    var $images = $card.find('.try-images');
    if (state.status === 'succeeded' && !$images.children().length) {
      $.each(state.images, function (i, img) { $images.append(resultFigure(state, img)); });
      if (Easel.board) { Easel.board.addGeneration(state); }
    }
    renderQueueItem(state);
  }

  function add(state) {
    if (tries[state.id]) { return; }
    tries[state.id] = {$card: newCard(state)};
    $('#tries-empty').prop('hidden', true);
    $('#tries').prepend(tries[state.id].$card);
    render(state);
    if (!Easel.isFinal(state.status)) {
      tries[state.id].stop = Easel.watchGeneration(state.api_url, render, function () {
        tries[state.id].$card.find('.try-status').text('This generation is gone.');
        removeQueueItem(state.id);
      });
    }
  }

  // The queue panel.
  function removeQueueItem(id) {
    $('#queue').children().filter(function () { return $(this).attr('data-id') === id; }).remove();
    $('#queue-empty').prop('hidden', $('#queue').children().length > 0);
  }

  function renderQueueItem(state) {
    if (Easel.isFinal(state.status)) { removeQueueItem(state.id); return; }
    var $item = $('#queue').children().filter(function () { return $(this).attr('data-id') === state.id; });
    if (!$item.length) {
      $item = $('<li class="list-group-item d-flex justify-content-between align-items-center gap-2 queue-item">')
        .attr('data-id', state.id);
      var $text = $('<div class="text-truncate">').appendTo($item);
      $('<div class="text-truncate fw-semibold">').text(state.params.prompt).appendTo($text);
      $('<div class="small text-body-secondary queue-status">').appendTo($text);
      $('<button type="button" class="btn btn-sm btn-outline-danger cancel">').text('Cancel')
        .attr('aria-label', 'Cancel: ' + state.params.prompt)
        .on('click', function () { cancel(state, $(this)); }).appendTo($item);
      $('#queue').append($item);
    }
    // A try's own poll has no wait for a queued generation; keep the queue's estimate until it runs.
    var text = Easel.statusText(state);
    if (state.status !== 'queued' || state.eta_seconds !== null || !$item.find('.queue-status').text()) {
      $item.find('.queue-status').text(text);
    }
    $item.attr('data-status', state.status);
    $('#queue-empty').prop('hidden', true);
  }

  function cancel(state, $button) {
    $button.prop('disabled', true).text('Stopping…');
    // POST with the CSRF header that easel.js sets on every jQuery POST.
    $.ajax({url: state.cancel_url, type: 'POST', dataType: 'json', headers: {Accept: 'application/json'}})
      .done(function (s) { if (tries[s.id]) { render(s); } else { renderQueueItem(s); } })
      .fail(function () { $button.prop('disabled', false).text('Cancel'); });
  }

  function refreshQueue() {
    clearTimeout(queueTimer);
    $.getJSON(queueUrl).done(function (body) {
      var active = {};
      $.each(body.generations, function (i, state) {
        active[state.id] = true;
        add(state);  // a try started before a reload, or in another tab
        renderQueueItem(state);
      });
      $('#queue').children().each(function () {
        if (!active[$(this).attr('data-id')]) { $(this).remove(); }
      });
      $('#queue-empty').prop('hidden', body.generations.length > 0);
      if (body.generations.length) { queueTimer = setTimeout(refreshQueue, 2000); }
    }).fail(function () { queueTimer = setTimeout(refreshQueue, 5000); });
  }

  Easel.tries = {add: add, refreshQueue: refreshQueue};
  refreshQueue();
});
