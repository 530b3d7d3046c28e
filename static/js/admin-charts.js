/* Admin dashboard: fetch the last hour's charts again every 30 s while the page is visible. */
$(function () {
  var charts = $('#last-hour');
  if (!charts.length) { return; }
  setInterval(function () {
    if (document.hidden) { return; }
    $.get(charts.data('refresh-url')).done(function (html) {
      charts.replaceWith(html);
      charts = $('#last-hour');
    });
  }, 30000);
});
