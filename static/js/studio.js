/* The studio form: when the model changes, fill in its defaults and describe it. */
$(function () {
  var info = JSON.parse($('#model-info').text() || '{}');
  $('#model').on('change', function () {
    var m = info[$(this).val()];
    if (!m) { return; }
    $('#width').val(m.width);
    $('#height').val(m.height);
    $('#steps').val(m.steps).attr({min: m.min_steps, max: m.max_steps});
    $('#guidance').val(m.guidance).attr({min: 0, max: m.max_guidance});
    $('#num_images').attr('max', m.max_images);
    $('#model-description').text(m.unavailable ? 'Not available: ' + m.unavailable : m.description);
  });
});
