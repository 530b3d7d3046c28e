/* The studio's model-dependent fields: hide the ones the model's pipeline lacks, offer only the LoRAs that
   fit it, and when a LoRA is chosen show its trigger words and apply the steps and guidance it implies
   (an LCM-LoRA: 4 steps, guidance 1.5). Runs after studio.js. */
$(function () {
  var info = JSON.parse($('#model-info').text() || '{}');
  var loras = JSON.parse($('#lora-info').text() || '{}');
  var $loraSelects = $('#loras select');

  function showCapabilities(m) {
    var notes = [];
    $('#negative-prompt-box').prop('hidden', !m.takes.negative_prompt);
    if (!m.takes.negative_prompt) { $('#negative_prompt').val(''); notes.push('This model takes no negative prompt.'); }
    $('#guidance-box').prop('hidden', !m.takes.guidance);
    if (!m.takes.guidance) { notes.push('This model takes no guidance scale.'); }
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

  function followModel() {
    var m = info[$('#model').val()];
    if (!m) { return; }
    showCapabilities(m);
    offerLoras(m);
    loraNotes();
  }

  $('#model').on('change', followModel);
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
  if (window.Easel && Easel.reuseSettings) {  // "reuse all settings" sets the model without a change event
    var reuse = Easel.reuseSettings;
    Easel.reuseSettings = function (params, seed) { reuse(params, seed); followModel(); };
  }
  followModel();
});
