/* A result's timelapse, on demand: the button swaps the picture for its animation in the same place and size,
   and back. */
(function (Easel) {
  Easel.toggleTimelapse = function ($button, $img, timelapseUrl) {
    var playing = $button.attr('aria-pressed') === 'true';
    if (!playing) { $img.data('picture', $img.attr('src')); }
    $img.attr('src', playing ? $img.data('picture') : timelapseUrl);
    $button.attr('aria-pressed', playing ? 'false' : 'true').text(playing ? '▶ Play timelapse' : '■ Show the picture');
  };
  $(function () {
    $('#play-timelapse').on('click', function () {
      Easel.toggleTimelapse($(this), $('#image'), $(this).data('timelapse'));
    });
  });
}(window.Easel = window.Easel || {}));
