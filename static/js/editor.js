// The image editor (templates/studio/editor.html): paint a mask over the picture with a brush or an eraser
// (mouse, pen or finger: pointer events), undo, clear, invert, or mark a half or the centre with a button.
// On submit the mask goes with the form as a PNG file named "mask": white = repaint, black = keep.
(function () {
  'use strict';
  var canvas = document.getElementById('editor-mask');
  var form = document.getElementById('editor-form');
  if (!canvas || !form) { return; }
  var ctx = canvas.getContext('2d');
  var size = document.getElementById('brush-size');
  var status = document.getElementById('mask-status');
  var error = document.getElementById('editor-error');
  var PAINT = 'rgba(255, 40, 90, 1)';  // shown at the canvas' opacity (CSS); exported as white
  var history = [];
  var drawing = false;
  var last = null;

  function tool() { return document.querySelector('input[name="tool"]:checked').value; }

  function remember() {
    history.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (history.length > 30) { history.shift(); }
  }

  function coverage() {
    var data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    var painted = 0;
    for (var i = 3; i < data.length; i += 4) { if (data[i] > 127) { painted += 1; } }
    return painted / (canvas.width * canvas.height);
  }

  function announce() {
    var share = Math.round(coverage() * 100);
    status.textContent = share === 0 ? 'Nothing painted yet.' : 'The mask covers ' + share + '% of the picture.';
  }

  function point(event) {
    var box = canvas.getBoundingClientRect();
    return {x: (event.clientX - box.left) * canvas.width / box.width,
            y: (event.clientY - box.top) * canvas.height / box.height,
            scale: canvas.width / box.width};
  }

  function stroke(from, to) {
    ctx.globalCompositeOperation = tool() === 'eraser' ? 'destination-out' : 'source-over';
    ctx.strokeStyle = ctx.fillStyle = PAINT;
    ctx.lineCap = ctx.lineJoin = 'round';
    ctx.lineWidth = Number(size.value) * to.scale;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);
    ctx.stroke();
    ctx.globalCompositeOperation = 'source-over';
  }

  canvas.addEventListener('pointerdown', function (event) {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    remember();
    drawing = true;
    last = point(event);
    stroke(last, last);
  });
  canvas.addEventListener('pointermove', function (event) {
    if (!drawing) { return; }
    var next = point(event);
    stroke(last, next);
    last = next;
  });
  function stop() {
    if (drawing) { drawing = false; announce(); }
  }
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);

  document.getElementById('mask-undo').addEventListener('click', function () {
    if (history.length) { ctx.putImageData(history.pop(), 0, 0); }
    announce();
  });
  document.getElementById('mask-clear').addEventListener('click', function () {
    remember();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    announce();
  });
  document.getElementById('mask-invert').addEventListener('click', function () {
    remember();
    var image = ctx.getImageData(0, 0, canvas.width, canvas.height);
    var data = image.data;
    for (var i = 0; i < data.length; i += 4) {
      var on = data[i + 3] > 127;
      data[i] = 255; data[i + 1] = 40; data[i + 2] = 90; data[i + 3] = on ? 0 : 255;
    }
    ctx.putImageData(image, 0, 0);
    announce();
  });
  // Keyboard and screen-reader equivalents of painting: a half, or the centre, at a time
  var PRESETS = {left: [0, 0, 0.5, 1], right: [0.5, 0, 0.5, 1], top: [0, 0, 1, 0.5], bottom: [0, 0.5, 1, 0.5],
                 centre: [0.25, 0.25, 0.5, 0.5]};
  document.querySelectorAll('#mask-presets [data-preset]').forEach(function (button) {
    button.addEventListener('click', function () {
      var box = PRESETS[button.getAttribute('data-preset')];
      remember();
      ctx.fillStyle = PAINT;
      ctx.fillRect(box[0] * canvas.width, box[1] * canvas.height, box[2] * canvas.width, box[3] * canvas.height);
      announce();
    });
  });

  // The mask as the server reads it: white where painted, black elsewhere, as a PNG file in the form
  function maskBlob(done) {
    var out = document.createElement('canvas');
    out.width = canvas.width;
    out.height = canvas.height;
    var octx = out.getContext('2d');
    var source = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    var image = octx.createImageData(canvas.width, canvas.height);
    for (var i = 0; i < source.length; i += 4) {
      var value = source[i + 3] > 127 ? 255 : 0;
      image.data[i] = image.data[i + 1] = image.data[i + 2] = value;
      image.data[i + 3] = 255;
    }
    octx.putImageData(image, 0, 0);
    out.toBlob(done, 'image/png');
  }

  var ready = false;
  form.addEventListener('submit', function (event) {
    if (ready) { return; }
    event.preventDefault();
    if (coverage() === 0) {
      error.textContent = 'Paint over the part to repaint first (or use one of the buttons that mark an area).';
      error.hidden = false;
      return;
    }
    error.hidden = true;
    maskBlob(function (blob) {
      var files = new DataTransfer();
      files.items.add(new File([blob], 'mask.png', {type: 'image/png'}));
      document.getElementById('edit-mask-file').files = files.files;
      ready = true;
      form.requestSubmit ? form.requestSubmit() : form.submit();
    });
  });
})();
