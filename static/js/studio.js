/* The studio form: when the model changes, fill in its defaults, describe it, hide the fields its pipeline
   lacks and offer only the LoRAs that fit it; when a LoRA is chosen, show its trigger words and apply the
   steps and guidance it implies (an LCM-LoRA: 4 steps, guidance 1.5). */
$(function () {
  var info = JSON.parse($('#model-info').text() || '{}');
  var loras = JSON.parse($('#lora-info').text() || '{}');
  var $loraSelects = $('#loras select');

  function showCapabilities(m) {
    var notes = [];
    $('#negative-prompt-box').prop('hidden', !m.negative_prompt);
    if (!m.negative_prompt) { $('#negative_prompt').val(''); notes.push('This model takes no negative prompt.'); }
    $('#guidance-box').prop('hidden', !m.guidance);
    if (!m.guidance) { notes.push('This model takes no guidance scale.'); }
    $('#capability-note').text(notes.join(' '));
  }

  function offerLoras(m) {
    $loraSelects.each(function () {
      var $select = $(this);
      $select.find('option').each(function () {
        var fits = !this.value || (m.loras || []).indexOf(this.value) >= 0;
        $(this).prop('hidden', !fits);
        if (!fits && $select.val() === this.value) { $select.val(''); }
      });
    });
  }

  function loraNotes() {
    var notes = [];
    $loraSelects.each(function () {
      var l = loras[$(this).val()];
      if (!l) { return; }
      if (l.trigger_words.length) { notes.push(l.label + ': trigger words “' + l.trigger_words.join('”, “') + '” (added to the prompt)'); }
      if (l.scheduler) { notes.push(l.label + ' uses ' + l.scheduler + (l.min_steps ? ', ' + l.min_steps + ' to ' + l.max_steps + ' steps' : '')); }
    });
    $('#lora-notes').text(notes.join('. '));
  }

  $('#model').on('change', function () {
    var m = info[$(this).val()];
    if (!m) { return; }
    $('#width').val(m.width);
    $('#height').val(m.height);
    $('#steps').val(m.steps).attr({min: m.min_steps, max: m.max_steps});
    $('#guidance').val(m.guidance).attr({min: 0, max: m.max_guidance});
    $('#num_images').attr('max', m.max_images);
    $('#model-description').text(m.unavailable ? 'Not available: ' + m.unavailable : m.description);
    showCapabilities(m);
    offerLoras(m);
    loraNotes();
  });

  $loraSelects.on('change', function () {
    var l = loras[$(this).val()];
    if (l) {
      if (l.steps) { $('#steps').val(l.steps).attr({min: l.min_steps, max: l.max_steps}); }
      if (l.guidance !== null) { $('#guidance').val(l.guidance); }
      var $scale = $('#' + this.id.replace(/-name$/, '-scale'));
      if (!$scale.val()) { $scale.attr('placeholder', l.scale); }
    }
    loraNotes();
  });

  var current = info[$('#model').val()];
  if (current) { offerLoras(current); }
  loraNotes();
});
