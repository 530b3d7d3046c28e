/* The studio as a workbench: submit in the page (the whole form as FormData, JSON back), keep every value,
   show per-field errors, random or fixed seed, "use this seed" and "reuse all settings" from any result,
   Ctrl/Cmd+Enter. The queue and the tries are drawn by studio-tries.js (Easel.tries). */
$(function () {
  var $form = $('#studio-form');
  if (!$form.length) { return; }
  var form = $form[0];
  var info = JSON.parse($('#model-info').text() || '{}');
  var MAX_SEED = 4294967295;

  // Width and height as one menu of the model's sizes (each with its shape); the two number fields stay behind it
  // and are what is sent. A size the menu lacks (say, from an old picture's settings) shows the numbers again.
  function gcd(a, b) { return b ? gcd(b, a % b) : a; }
  function sizeLabel(w, h) {
    var d = gcd(w, h);
    var shape = w === h ? 'square' : (w > h ? 'landscape ' : 'portrait ') + (w / d) + ':' + (h / d);
    return w + ' × ' + h + ' (' + shape + ')';
  }
  function offerSizes(m) {
    var $size = $('#size').empty();
    $.each(m.sizes || [], function (i, pair) {
      $('<option>').val(pair[0] + 'x' + pair[1]).text(sizeLabel(pair[0], pair[1])).appendTo($size);
    });
  }
  function syncSize() {
    var wanted = $('#width').val() + 'x' + $('#height').val();
    var listed = $('#size option').filter(function () { return this.value === wanted; }).length > 0;
    if (listed) { $('#size').val(wanted); }
    var invalid = $('#width, #height').hasClass('is-invalid');
    $('#size-box').prop('hidden', !listed || invalid);
    $('.size-number').prop('hidden', listed && !invalid);
  }
  $('#size').on('change', function () {
    var pair = this.value.split('x');
    $('#width').val(pair[0]);
    $('#height').val(pair[1]);
  });

  // Only the styles that change something on the model (a style's words the model never saw change nothing).
  function offerStyles(m) {
    var offered = m.styles || [];
    $('#style option').each(function () { this.hidden = this.disabled = offered.indexOf(this.value) < 0; });
    if (offered.indexOf($('#style').val()) < 0) { $('#style').val('none'); }
  }

  // The model's defaults and limits, when a person picks another model.
  function applyModel(name, fillDefaults) {
    var m = info[name];
    if (!m) { return; }
    offerSizes(m);
    offerStyles(m);
    if (fillDefaults) {
      $('#width').val(m.width);
      $('#height').val(m.height);
      $('#steps').val(m.steps);
      $('#guidance').val(m.guidance);
    }
    syncSize();
    $('#steps').attr({min: m.min_steps, max: m.max_steps});
    $('#guidance').attr({min: 0, max: m.max_guidance});
    $('#num_images').attr('max', m.max_images);
    $('#model-description').text(m.unavailable ? 'Not available: ' + m.unavailable : m.description);
    $('#hires-box').prop('hidden', !m.hires);  // offered only where the model makes a larger size
  }
  $('#model').on('change', function () { applyModel($(this).val(), true); });
  if (info[$('#model').val()]) { offerSizes(info[$('#model').val()]); offerStyles(info[$('#model').val()]); }
  syncSize();

  // Seed: "Random" on leaves the field blank, so the server picks a new one each time; a number in the field is
  // used as it is. Typing a number turns Random off, emptying the field turns it on; turning it off keeps a seed.
  var $seed = $('#seed');
  var $random = $('#seed-random');
  function setRandom(on) {
    $random.prop('checked', on);
    if (on) { $seed.val(''); }
    else if (!$seed.val()) { $seed.val(Math.floor(Math.random() * (MAX_SEED + 1))); }
  }
  $('#seed-mode').prop('hidden', false);
  $random.prop('checked', !$seed.val());
  $random.on('change', function () { setRandom(this.checked); });
  $seed.on('input', function () { $random.prop('checked', $.trim($seed.val()) === ''); });

  function openSettings() { $form.find('details').prop('open', true); }

  Easel.useSeed = function (seed) {
    $seed.val(seed);
    $random.prop('checked', false);
    openSettings();
  };

  // Every parameter of a result back into the form, by field name (fields added later are filled the same way).
  Easel.reuseSettings = function (params, seed) {
    if (params.model !== undefined && form.elements.model) {
      $(form.elements.model).val(params.model);
      applyModel(params.model, false);
    }
    $.each(params, function (name, value) {
      var field = form.elements[name];
      if (!field || name === 'model' || field.type === 'file' || value === null || value === undefined) { return; }
      if (field.type === 'checkbox') { field.checked = !!value; }
      else if (!field.nodeName) { field.value = String(value); }  // a group of radio buttons
      else { $(field).val(String(value)); }
    });
    syncSize();
    Easel.useSeed(seed === undefined ? params.seed : seed);
    $('#prompt').trigger('focus');
  };

  // Per-field errors next to their fields, as the server-rendered form shows them.
  function clearErrors() {
    $form.find('.is-invalid').removeClass('is-invalid').removeAttr('aria-invalid');
    $form.find('.invalid-feedback').remove();
    syncSize();
    $('#studio-error').prop('hidden', true).text('');
  }
  function showErrors(errors) {
    var first = null;
    $.each(errors, function (name, messages) {
      var field = form.elements[name];
      if (!field || !field.nodeName) { return; }
      var $field = $(field).addClass('is-invalid').attr('aria-invalid', 'true');
      var $box = $field.closest('.mb-3');
      $.each(messages, function (i, message) {
        $('<div class="invalid-feedback d-block">').text(message).appendTo($box);
      });
      if (!first) { first = field; }
    });
    syncSize();  // a refused width or height shows the numbers with their message
    if (first) {
      if ($(first).closest('details').length) { openSettings(); }
      first.focus();
    }
  }
  function showRefusal(message) {
    $('#studio-error').text(message).prop('hidden', false);
  }

  // A starting image: choosing another file clears the refusal shown for the last one, and the chosen picture
  // shows as a thumbnail (a local blob: URL; the server still judges the file by decoding it).
  var ACCEPTED = ['image/png', 'image/jpeg', 'image/webp'];
  var thumbUrl = null;
  $('#init_image').on('change', function () {
    var $field = $(this);
    var $box = $field.closest('.mb-3');
    $field.removeClass('is-invalid').removeAttr('aria-invalid');
    $box.find('.invalid-feedback').remove();
    $box.find('#init-image-thumb').remove();
    if (thumbUrl) { URL.revokeObjectURL(thumbUrl); thumbUrl = null; }
    var file = this.files && this.files[0];
    if (!file) { return; }
    if (ACCEPTED.indexOf(file.type) < 0) {
      $field.addClass('is-invalid').attr('aria-invalid', 'true');
      $('<div class="invalid-feedback d-block">').text('Choose a PNG, JPEG or WebP picture.').appendTo($box);
      return;
    }
    thumbUrl = URL.createObjectURL(file);
    $('<img id="init-image-thumb" class="d-block mt-2 border rounded" width="64" height="64">')
      .attr({src: thumbUrl, alt: 'The chosen starting image: ' + file.name}).insertAfter($field);
  });

  $form.on('submit', function (e) {
    var submitter = e.originalEvent && e.originalEvent.submitter;
    if (submitter && submitter.hasAttribute('formaction')) { return; }  // "Make a grid": an ordinary page post
    e.preventDefault();
    clearErrors();
    var $button = $form.find('button[type=submit]');
    $button.attr('aria-busy', 'true');
    $.ajax({
      url: $form.attr('action'), type: 'POST', data: new FormData(form), processData: false, contentType: false,
      dataType: 'json', headers: {Accept: 'application/json'}
    }).done(function (state) {
      Easel.tries.add(state);
      Easel.tries.refreshQueue();
    }).fail(function (xhr) {
      var body = xhr.responseJSON || {};
      if (xhr.status === 400 && body.errors) { showErrors(body.errors); return; }
      showRefusal(body.error || 'Could not reach the site. Check your connection and try again.');
    }).always(function () { $button.removeAttr('aria-busy'); });
  });

  // Ctrl+Enter (Cmd+Enter on a Mac) submits from anywhere in the form.
  $form.on('keydown', function (e) {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $form.trigger('submit');
    }
  });
});
