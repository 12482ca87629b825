// Progressive enhancement only: every page works without this file.
(function () {
  'use strict';
  // Live letter preview: fill each [data-field] span with what is typed in the field of that name.
  var preview = document.getElementById('letter-preview');
  if (preview) {
    var spans = preview.querySelectorAll('[data-field]');
    var update = function (name, value) {
      for (var i = 0; i < spans.length; i++) {
        var span = spans[i];
        if (span.getAttribute('data-field') !== name) continue;
        var text = value.trim();
        span.textContent = text || span.getAttribute('data-placeholder');
        span.classList.toggle('empty', !text);
      }
    };
    ['full_name', 'city', 'country', 'personal_note'].forEach(function (name) {
      var input = document.querySelector('[name="' + name + '"]');
      if (!input) return;
      input.addEventListener('input', function () { update(name, input.value); });
      if (input.value) update(name, input.value);
    });
  }
  // Forms that say what they will do before doing it.
  document.addEventListener('submit', function (event) {
    var message = event.target.getAttribute && event.target.getAttribute('data-confirm');
    if (message && !window.confirm(message)) event.preventDefault();
  });
  // Move focus to the error summary so screen readers announce it.
  var errors = document.querySelector('.errors[role=alert]');
  if (errors) errors.focus();
  var copy = document.querySelector('input.copy');
  if (copy) copy.addEventListener('focus', function () { copy.select(); });
})();
