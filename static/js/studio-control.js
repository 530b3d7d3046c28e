/* The studio's control image: draw a scribble on the canvas (black on white; it becomes the form's control_image
   file), or upload one; offer only the control models that fit the chosen model; show what the preprocessor
   makes of it (POST /controls/preview). Plain canvas code, no library. Runs after studio-models.js. */
$(function () {
  var canvas = document.getElementById('control-canvas');
  if (!canvas) { return; }
  var info = JSON.parse($('#control-info').text() || '{}');
  var ctx = canvas.getContext('2d');
  var input = document.getElementById('control_image');
  var drawing = false, drawn = false, last = null;

  function clear() {
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    drawn = false;
  }

  function point(e) {
    var box = canvas.getBoundingClientRect();
    return {x: (e.clientX - box.left) * canvas.width / box.width, y: (e.clientY - box.top) * canvas.height / box.height};
  }

  function stroke(to) {
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 8;
    ctx.lineCap = ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    last = to;
  }

  // The drawing becomes the file input's file, so the form (and its in-page submit) sends it as any upload.
  function useDrawing() {
    if (!drawn) { return; }
    canvas.toBlob(function (blob) {
      var files = new DataTransfer();
      files.items.add(new File([blob], 'scribble.png', {type: 'image/png'}));
      input.files = files.files;
      $('#control_from').val('');
      preview();
    }, 'image/png');
  }

  function preview() {
    if (!input.files || !input.files.length) { return; }
    var data = new FormData();
    data.append('csrf_token', $('#studio-form input[name=csrf_token]').val());
    data.append('control_image', input.files[0]);
    var pre = $('#control_preprocessor').val() || (info[$('#control').val()] || firstFitting() || {}).preprocessor || 'none';
    data.append('control_preprocessor', pre);
    data.append('width', $('#width').val());
    data.append('height', $('#height').val());
    fetch(canvas.dataset.previewUrl || '/controls/preview', {method: 'POST', body: data, credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.blob() : null; })
      .then(function (blob) {
        if (!blob) { return; }
        $('#control-preview').attr('src', URL.createObjectURL(blob));
        $('#control-preview-box').prop('hidden', false);
      });
  }

  function firstFitting() {
    var model = $('#model').val();
    for (var name in info) { if (info[name].models.indexOf(model) >= 0) { return info[name]; } }
    return null;
  }

  function followModel() {  // only the control models that fit the chosen model; none fits: the box hides
    var model = $('#model').val(), any = false;
    $('#control option').each(function () {
      var fits = !this.value || (info[this.value] && info[this.value].models.indexOf(model) >= 0);
      $(this).prop('hidden', !fits);
      if (!fits && $('#control').val() === this.value) { $('#control').val(''); }
      any = any || (this.value && fits);
    });
    $('#control-box').prop('hidden', !any);
  }

  canvas.addEventListener('pointerdown', function (e) {
    drawing = true;
    last = point(e);
    canvas.setPointerCapture(e.pointerId);
    stroke({x: last.x + 0.1, y: last.y + 0.1});
    drawn = true;
  });
  canvas.addEventListener('pointermove', function (e) { if (drawing) { stroke(point(e)); } });
  canvas.addEventListener('pointerup', function () { drawing = false; useDrawing(); });
  $('#control-clear').on('click', function () {
    clear();
    input.value = '';
    $('#control_from').val('');
    $('#control-preview-box').prop('hidden', true);
  });
  $(input).on('change', function () { $('#control_from').val(''); preview(); });
  $('#control_preprocessor, #control').on('change', preview);
  $('#model').on('change', followModel);
  // "Reuse settings" brings back a generation's control: its stored image (control_from) is shown as the preview.
  if (window.Easel && Easel.reuseSettings) {
    var reuse = Easel.reuseSettings;
    Easel.reuseSettings = function (params, seed) {
      reuse(params, seed);
      clear();
      input.value = '';
      var from = params.control_from;
      $('#control-preview-box').prop('hidden', !from);
      if (from) { $('#control-preview').attr('src', '/generations/' + encodeURIComponent(from) + '/control.png'); }
      followModel();
    };
  }
  clear();
  followModel();
});
