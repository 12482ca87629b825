// Progressive enhancement only: every page works without this file.
(function () {
  'use strict';
  // Live letter preview: fill each [data-field] span with what is typed in the field of that name.
  // When the letter's {{#if}} blocks depend on which fields are filled in, the server sent every
  // version (data-variants, built from escaped text): show the one for the fields filled in so far.
  var preview = document.getElementById('letter-preview');
  if (preview) {
    var names = ['full_name', 'city', 'country', 'personal_note'];
    var inputs = names.map(function (name) { return document.querySelector('[name="' + name + '"]'); });
    var variants = preview.getAttribute('data-variants') ? JSON.parse(preview.getAttribute('data-variants')) : null;
    // Each piece of text is sent once; a version is its pieces joined (expandVariants in src/campaigns/preview.ts).
    if (variants) {
      variants.list = variants.subjects.map(function (subject, i) {
        return { subject: subject, body: variants.bodies[i].map(function (p) { return variants.pieces[p]; }).join('') };
      });
    }
    var shown = -1;
    var subject = preview.querySelector('[data-preview="subject"]');
    // What the form's validation trims from either end of a one-line field: white space and
    // characters that show nothing; a tab in one is a space. A note loses white space only, or
    // everything when nothing in it shows.
    // Built at run time: a browser from before 2018 (Safari 10, Chrome 63) knows no \p{…}, and a
    // literal would stop the whole script from parsing there; it gets white space alone instead.
    var unicodeOr = function (source, flags, fallback) {
      try { return new RegExp(source, flags + 'u'); } catch (e) { return new RegExp(fallback, flags); }
    };
    var blank = '[\\s\\p{Cf}\\u115f\\u1160\\u3164\\u2800\\uffa0]';
    var blankStart = unicodeOr('^' + blank + '+', '', '^\\s+');
    var blankAtEnd = unicodeOr(blank + '$', '', '\\s$');
    // A subdivision's flag (Scotland's: 🏴 and tag characters, which are format characters) ends
    // the text as it shows; the validation keeps it (trimBlank in src/cases/types.ts).
    var flagAtEnd = unicodeOr('\\u{1F3F4}[\\u{E0020}-\\u{E007E}]+\\u{E007F}$', '', '$^');
    var trimBlank = function (text) {
      text = text.replace(blankStart, '');
      while (blankAtEnd.test(text) && !flagAtEnd.test(text)) text = text.replace(blankAtEnd, '');
      return text;
    };
    var blanks = unicodeOr(blank, 'g', '\\s');
    var shows = unicodeOr('[\\p{L}\\p{N}\\p{S}\\p{P}]', '', '\\S');
    var update = function () {
      // As the letter has it: never more than one blank line in a row.
      var values = inputs.map(function (input, i) {
        if (!input) return '';
        var text = input.value.replace(/\r\n?/g, '\n').replace(/\n{3,}/g, '\n\n');
        if (names[i] !== 'personal_note') return trimBlank(text.replace(/\t/g, ' '));
        // Nothing that shows (src/cases/types.ts, showsSomething): no note.
        return shows.test(text.replace(blanks, '')) ? text.trim() : '';
      });
      if (variants) {
        var bits = variants.fields.reduce(function (acc, name, i) { return values[names.indexOf(name)] ? acc | (1 << i) : acc; }, 0);
        var index = variants.masks[bits];
        if (index !== shown) {
          shown = index;
          preview.querySelector('[data-preview="subject"]').innerHTML = variants.list[index].subject;
          preview.querySelector('[data-preview="body"]').innerHTML = variants.list[index].body;
        }
      }
      var spans = preview.querySelectorAll('[data-field]');
      for (var i = 0; i < spans.length; i++) {
        var span = spans[i];
        var text = values[names.indexOf(span.getAttribute('data-field'))] || '';
        // A subject is one line, as the letter's (oneLine in src/mail/address.ts): each run of
        // control characters (line breaks) is a space, and so is each run of two or more spaces.
        // A single space of another kind (an ideographic space between names) stays as typed.
        // Direction controls go and `=?` is broken up, as there, so no typed text reads as an encoded word.
        if (subject && subject.contains(span)) {
          text = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/[\u202a-\u202e\u2066-\u2069]/g, '').replace(/=\?/g, '= ?').replace(/\s{2,}/g, ' ');
        }
        span.textContent = text || span.getAttribute('data-placeholder');
        span.classList.toggle('empty', !text);
      }
    };
    inputs.forEach(function (input) { if (input) input.addEventListener('input', update); });
    update();
    // Back to this page: the browser puts what was typed back in the fields after this script ran
    // (or shows the page as it was left), without an input event.
    window.addEventListener('pageshow', update);
  }
  // An address whose domain is one letter off a common mail provider's (gmial.com, mail.ry) is
  // most often a typo, and its confirmation would never arrive: offer the provider's, never change
  // it unasked.
  var PROVIDERS = ['gmail.com', 'googlemail.com', 'mail.ru', 'mail.kz', 'mail.com', 'inbox.ru', 'list.ru', 'bk.ru', 'yandex.ru',
    'yandex.kz', 'yandex.com', 'ya.ru', 'rambler.ru', 'outlook.com', 'hotmail.com', 'live.com', 'msn.com', 'yahoo.com', 'icloud.com',
    'me.com', 'proton.me', 'protonmail.com', 'gmx.de', 'gmx.net', 'gmx.com', 'web.de', 'aol.com', 'qq.com', '163.com', 'ukr.net'];
  // Edits between two strings, a swap of neighbours counting as one (optimal string alignment).
  var distance = function (a, b) {
    var d = [];
    for (var i = 0; i <= a.length; i++) { d[i] = [i]; }
    for (var j = 0; j <= b.length; j++) { d[0][j] = j; }
    for (i = 1; i <= a.length; i++) {
      for (j = 1; j <= b.length; j++) {
        var cost = a[i - 1] === b[j - 1] ? 0 : 1;
        d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
    return d[a.length][b.length];
  };
  var suggestion = function (address) {
    var at = address.lastIndexOf('@');
    if (at < 1) return null;
    var domain = address.slice(at + 1).toLowerCase();
    if (domain.length < 4 || PROVIDERS.indexOf(domain) >= 0) return null;
    for (var k = 0; k < PROVIDERS.length; k++) {
      if (distance(domain, PROVIDERS[k]) === 1) return address.slice(0, at + 1) + PROVIDERS[k];
    }
    return null;
  };
  var emailInputs = document.querySelectorAll('input[type=email][autocomplete=email]');
  Array.prototype.forEach.call(emailInputs, function (input) {
    var hint = document.createElement('p');
    hint.id = input.id + '-hint';
    hint.className = 'hint';
    hint.setAttribute('aria-live', 'polite');
    input.parentNode.insertBefore(hint, input.nextSibling);
    input.setAttribute('aria-describedby', ((input.getAttribute('aria-describedby') || '') + ' ' + hint.id).trim());
    var shown = null;
    var check = function () {
      var better = suggestion(input.value.trim());
      // The same hint keeps its button: pressing it blurs the field first, and a button built anew
      // under the pointer would miss the click.
      if (better === shown) return;
      shown = better;
      hint.textContent = '';
      if (!better) return;
      var use = document.createElement('button');
      use.type = 'button';
      use.className = 'link';
      use.textContent = better;
      use.addEventListener('click', function () {
        input.value = better;
        shown = null;
        hint.textContent = '';
        input.focus();
      });
      hint.appendChild(document.createTextNode('Did you mean '));
      hint.appendChild(use);
      hint.appendChild(document.createTextNode('?'));
    };
    input.addEventListener('change', check);
    input.addEventListener('blur', check);
  });
  // Forms that say what they will do before doing it.
  document.addEventListener('submit', function (event) {
    var message = event.target.getAttribute && event.target.getAttribute('data-confirm');
    if (message && !window.confirm(message)) event.preventDefault();
  });
  // Move focus to the error summary so screen readers announce it.
  var errors = document.querySelector('.errors[role=alert], .notice[role=alert][autofocus]');
  if (errors) {
    // Its top in view, however tall enlarged text makes it: focus alone would centre it.
    if (errors.scrollIntoView) errors.scrollIntoView({ block: 'start' });
    errors.focus({ preventScroll: true });
  }
  var copy = document.querySelector('input.copy');
  if (copy) copy.addEventListener('focus', function () { copy.select(); });
})();
