/* Colour mode before first paint (loaded in <head>, before the CSS is used): the choice kept in localStorage
   ("light" or "dark"), else the system's; the navbar's toggle switches and remembers it (Bootstrap's data-bs-theme). */
(function () {
  var KEY = 'easel-theme';
  var system = window.matchMedia('(prefers-color-scheme: dark)');

  function stored() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }  // storage may be blocked
  }
  function current() {
    var choice = stored();
    return choice === 'light' || choice === 'dark' ? choice : (system.matches ? 'dark' : 'light');
  }
  var chosen = null;  // kept in memory too, for when storage is blocked
  function apply() {
    var theme = chosen || current();
    document.documentElement.setAttribute('data-bs-theme', theme);
    var button = document.getElementById('theme-toggle');
    if (button) {
      var next = theme === 'dark' ? 'light' : 'dark';
      button.setAttribute('aria-label', 'Switch to ' + next + ' mode');
      button.setAttribute('aria-pressed', theme === 'dark' ? 'true' : 'false');
      button.textContent = theme === 'dark' ? 'Light mode' : 'Dark mode';
    }
  }

  apply();
  system.addEventListener('change', apply);  // following the system until a choice is made
  document.addEventListener('DOMContentLoaded', function () {
    var button = document.getElementById('theme-toggle');
    if (!button) { return; }
    button.hidden = false;
    button.addEventListener('click', function () {
      var next = (chosen || current()) === 'dark' ? 'light' : 'dark';
      try {  // choosing what the system shows goes back to following the system
        if (next === (system.matches ? 'dark' : 'light')) { localStorage.removeItem(KEY); } else { localStorage.setItem(KEY, next); }
      } catch (e) { chosen = next; }
      apply();
    });
    apply();
  });
})();
