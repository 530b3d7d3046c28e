/* Prompt history: my recent prompts (and negative prompts) offered under the field as I type, from
   GET /api/prompts. Arrow keys move through them, Enter or a click takes one, Escape closes the list. */
$(function () {
  var url = $('#workbench').data('prompts-url');
  if (!url) { return; }

  function attach(fieldName, label) {
    var $field = $('#' + fieldName);
    if (!$field.length) { return; }
    var listId = fieldName + '-history';
    var $list = $('<ul class="list-group shadow prompt-history" role="listbox" hidden>')
      .attr({id: listId, 'aria-label': label});
    $field.closest('.mb-3').addClass('position-relative').append($list);
    $field.attr({'aria-autocomplete': 'list', 'aria-controls': listId});
    var timer = null, request = null, active = -1;

    function close() {
      $list.prop('hidden', true).empty();
      active = -1;
      $field.removeAttr('aria-activedescendant');
    }
    function highlight(index) {
      var $items = $list.children();
      if (!$items.length) { return; }
      active = (index + $items.length) % $items.length;
      $items.removeClass('active').attr('aria-selected', 'false');
      var $item = $items.eq(active).addClass('active').attr('aria-selected', 'true');
      $field.attr('aria-activedescendant', $item.attr('id'));
      $item[0].scrollIntoView({block: 'nearest'});
    }
    function choose(text) {
      $field.val(text).trigger('input-chosen');
      close();
      $field.trigger('focus');
    }
    function show(prompts) {
      var current = $.trim($field.val());
      $list.empty();
      active = -1;
      $.each(prompts, function (i, text) {
        if (text === current) { return; }
        $('<li class="list-group-item list-group-item-action text-truncate" role="option" aria-selected="false">')
          .attr({id: listId + '-' + i, title: text}).text(text)
          .on('mousedown', function (e) { e.preventDefault(); choose(text); })  // before the field loses focus
          .appendTo($list);
      });
      $list.prop('hidden', $list.children().length === 0);
    }
    function lookUp() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (request) { request.abort(); }
        request = $.getJSON(url, {field: fieldName, q: $.trim($field.val())}).done(function (body) {
          if ($field.is(':focus')) { show(body.prompts); }
        });
      }, 150);
    }

    $field.on('input focus', lookUp);
    $field.on('blur', function () { setTimeout(close, 100); });
    $field.on('keydown', function (e) {
      var open = !$list.prop('hidden');
      if (e.key === 'ArrowDown' && open) { e.preventDefault(); highlight(active + 1); }
      else if (e.key === 'ArrowUp' && open) { e.preventDefault(); highlight(active - 1); }
      else if (e.key === 'Escape' && open) { e.preventDefault(); e.stopPropagation(); close(); }
      else if (e.key === 'Enter' && open && active >= 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
        e.preventDefault();
        choose($list.children().eq(active).attr('title'));
      }
    });
  }

  attach('prompt', 'Your recent prompts');
  attach('negative_prompt', 'Your recent negative prompts');
});
