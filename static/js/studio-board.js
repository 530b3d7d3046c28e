/* The studio's board ("Recent"): my newest pictures as cards with their prompt, "Use seed", "Reuse settings",
   Open and Star. The server draws them on load; Easel.board.addGeneration puts a finished try's pictures first.
   Easel.shownSize is the one rule for showing a picture: a small one at a whole multiple, pixelated. */
window.Easel = window.Easel || {};

/* How big to show a ``width`` × ``height`` picture in a ``box`` (CSS pixels): a whole multiple of a small one, so
   its pixels stay sharp, else scaled down to fit (webapp/studio/board.py agrees). */
Easel.shownSize = function (width, height, box) {
  var longest = Math.max(width, height, 1);
  if (longest <= box) {
    var factor = Math.floor(box / longest);
    return {width: width * factor, height: height * factor, pixelated: true};
  }
  return {width: Math.max(1, Math.round(width * box / longest)), height: Math.max(1, Math.round(height * box / longest)),
          pixelated: false};
};
Easel.SMALL_PICTURE = 256;  // up to this size a picture is shown from its PNG (the thumbnail is smoothed)

$(function () {
  var $board = $('#recent');
  if (!$board.length) { return; }
  var BOX = 128;
  var token = $('#studio-form input[name=csrf_token]').val();

  function reveal($cards) { $cards.find('.use-seed, .reuse-settings').prop('hidden', false); }

  function setStarred($form, starred) {
    $form.find('input[name=starred]').val(starred ? '0' : '1');
    $form.find('.star').attr('aria-pressed', starred ? 'true' : 'false')
      .toggleClass('btn-warning', starred).toggleClass('btn-outline-warning', !starred);
  }

  function newCard(state, img) {
    var prompt = state.params.prompt;
    var seed = img.seed;
    var size = Easel.shownSize(img.width, img.height, BOX);
    var small = Math.max(img.width, img.height) <= Easel.SMALL_PICTURE;
    var $card = $('<figure class="card mb-0 board-card">')
      .attr({'data-image-id': img.id, 'data-seed': seed, 'data-params': JSON.stringify(state.params)});
    $('<a class="board-pic" tabindex="-1">').attr('href', img.page_url).append(
      $('<img>').attr({src: small ? img.url : img.thumbnail_url, alt: prompt, width: size.width, height: size.height})
        .toggleClass('pixelated', size.pixelated)
    ).appendTo($card);
    var $caption = $('<figcaption class="card-body p-2">').appendTo($card);
    $('<p class="small mb-1 text-truncate board-prompt">').text(prompt).attr('title', prompt).appendTo($caption);
    var $actions = $('<div class="d-flex flex-wrap gap-1">').appendTo($caption);
    $('<button type="button" class="btn btn-sm btn-outline-secondary use-seed">').text('Use seed ' + seed).appendTo($actions);
    $('<button type="button" class="btn btn-sm btn-outline-primary reuse-settings">').text('Reuse settings').appendTo($actions);
    $('<a class="btn btn-sm btn-outline-primary open">').attr('href', img.page_url).text('Open').appendTo($actions);
    var $form = $('<form method="post" class="star-form">').attr('action', img.page_url + '/star').appendTo($actions);
    $('<input type="hidden" name="csrf_token">').val(token).appendTo($form);
    $('<input type="hidden" name="starred">').appendTo($form);
    $('<button type="submit" class="btn btn-sm star">').append($('<span aria-hidden="true">').text('★'), ' Star')
      .appendTo($form);
    setStarred($form, false);
    return $card;
  }

  Easel.board = {
    /* A finished generation's pictures, first on the board (once). */
    addGeneration: function (state) {
      var $cards = $();
      $.each(state.images, function (i, img) {
        if ($board.children().filter(function () { return $(this).attr('data-image-id') === img.id; }).length) { return; }
        $cards = $cards.add(newCard(state, img));
      });
      $board.prepend($cards);
      $('#recent-empty').prop('hidden', $board.children().length > 0);
    }
  };

  $board.on('click', '.use-seed', function () {
    Easel.useSeed(Number($(this).closest('.board-card').attr('data-seed')));
  });
  $board.on('click', '.reuse-settings', function () {
    var $card = $(this).closest('.board-card');
    Easel.reuseSettings(JSON.parse($card.attr('data-params')), Number($card.attr('data-seed')));
  });
  // Star in the page (the form alone posts and opens the image's page).
  $board.on('submit', '.star-form', function (e) {
    e.preventDefault();
    var $form = $(this);
    var starred = $form.find('input[name=starred]').val() === '1';
    var $button = $form.find('.star').prop('disabled', true);
    $.ajax({url: $form.attr('action'), type: 'POST', data: $form.serialize()})
      .done(function () { setStarred($form, starred); })
      .always(function () { $button.prop('disabled', false); });
  });
  reveal($board.children());
});
