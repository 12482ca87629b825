// The console works without this file; it only adds comfort. No inline scripts: the CSP forbids them.
(function () {
  'use strict';
  // Forms that say what they will do before doing it. Without this script the server asks on a
  // page of its own, as it does for a form whose `confirmed` field stays empty.
  document.addEventListener('submit', function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute('data-confirm');
    if (!message) return;
    if (!window.confirm(message)) return event.preventDefault();
    if (form.elements.confirmed) form.elements.confirmed.value = '1';
  });

  // A form is sent once: on a slow line a second click makes the browser show the second answer
  // only, which for a form already saved says "someone saved this meanwhile", "this slug exists
  // already", or, for one that shows a secret once (a request_key), hides the secret. Back to the
  // page (bfcache), it can be sent again.
  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.elements || (form.getAttribute('method') || '').toLowerCase() !== 'post') return;
    if (form.getAttribute('data-sent')) return event.preventDefault();
    form.setAttribute('data-sent', '1');
    // A send stopped (Esc, the Stop button) or lost on the way leaves this page as it was, with
    // no answer to come: after a while the form may be sent again, or only a reload, which loses
    // what was typed, would send it. The server answers a form sent twice as saved.
    setTimeout(function () { form.removeAttribute('data-sent'); }, 5000);
  });
  window.addEventListener('pageshow', function () {
    var sent = document.querySelectorAll('form[data-sent]');
    for (var k = 0; k < sent.length; k++) sent[k].removeAttribute('data-sent');
  });

  // Move focus to the error summary, so a screen reader announces it.
  var errors = document.querySelector('.errors[role=alert]');
  if (errors) errors.focus();

  var copy = document.querySelectorAll('input.copy');
  for (var i = 0; i < copy.length; i++) copy[i].addEventListener('focus', function (e) { e.target.select(); });

  // A chosen CSV file is read here into the textarea, to be seen and corrected before it is
  // posted; the file input is emptied so it is not posted twice. Without this the file is posted.
  var files = document.querySelectorAll('input[type=file][data-fill]');
  for (var j = 0; j < files.length; j++) {
    files[j].addEventListener('change', function (e) {
      var input = e.target;
      var target = document.getElementById(input.getAttribute('data-fill'));
      var file = input.files && input.files[0];
      if (!target || !file) return;
      var reader = new FileReader();
      reader.onload = function () {
        // Not UTF-8 (Excel's "CSV" on Russian or Kazakh Windows): each letter read here would be
        // "\uFFFD". The file stays chosen, so the server reads it and says how to save it again.
        if (String(reader.result).indexOf('\uFFFD') !== -1) return;
        target.value = String(reader.result);
        input.value = '';
        // The file field now says "no file chosen": say where its text went.
        var said = document.getElementById(input.id + '-status');
        if (said) said.textContent = file.name + ' is loaded into the CSV box above: check it, then send the form.';
      };
      reader.readAsText(file);
    });
  }

  // Live letter preview: the server renders it (the same code that renders real letters);
  // this only asks again, a moment after typing stops.
  var form = document.getElementById('letter-form');
  var preview = document.getElementById('letter-preview');
  if (form && preview && window.fetch) {
    var timer = null;
    var seq = 0;
    // A screen reader hears when the letter stops or starts compiling, not the whole letter again
    // at every pause in typing.
    var status = document.getElementById('letter-preview-status');
    var compiles = !preview.querySelector('.compile-errors');
    var tell = function () {
      var now = !preview.querySelector('.compile-errors');
      if (status && now !== compiles) status.textContent = now ? 'The letter compiles again; the preview is up to date.' : 'The letter does not compile: the preview shows where.';
      compiles = now;
    };
    var refresh = function () {
      var mine = ++seq;
      var body = new URLSearchParams();
      ['_csrf', 'letter_subject', 'letter_body', 'target'].forEach(function (name) {
        var field = form.elements.namedItem(name);
        if (field) body.append(name, field.value);
      });
      fetch(form.getAttribute('data-preview'), { method: 'POST', body: body, credentials: 'same-origin' })
        .then(function (res) { return res.ok ? res.text() : Promise.reject(res.status); })
        .then(function (html) { if (mine === seq) { preview.innerHTML = html; tell(); } })
        .catch(function () { /* the Preview button still works */ });
    };
    var schedule = function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    };
    form.addEventListener('input', schedule);
    form.addEventListener('change', schedule);
  }

  // Campaign page: counts follow the database while the page is open (every few seconds, and
  // not while the tab is hidden). Without this script the page shows them as of its loading.
  var counts = document.getElementById('counts');
  if (counts && window.fetch) {
    var set = function (selector, value) {
      var el = document.querySelector(selector);
      if (el && el.textContent !== String(value)) el.textContent = String(value);
    };
    // The next poll is set once this one has its answer: a slow count (a big campaign, a busy
    // database) never has several of them in flight from one tab.
    var later = function () { setTimeout(poll, 4000); };
    var poll = function () {
      if (document.hidden) return later();
      fetch(counts.getAttribute('data-stats'), { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (res) { return res.ok ? res.json() : Promise.reject(res.status); })
        .then(function (s) {
          set('[data-stat=confirmed]', s.signatures.confirmed);
          set('[data-stat=pending]', s.signatures.pending);
          set('[data-stat=sent]', s.deliveries.sent);
          set('[data-stat=sent-word]', s.deliveries.sent === 1 ? 'letter' : 'letters');
          set('[data-stat=waiting]', s.deliveries.queued);
          set('[data-stat=failed]', s.deliveries.failed);
          // Red while any failed, as the page draws it when loaded.
          var failed = document.querySelector('[data-stat=failed]');
          if (failed && failed.parentElement) failed.parentElement.classList.toggle('bad', s.deliveries.failed > 0);
          set('[data-stat=sending]', s.deliveries.sending);
          set('[data-stat=retry]', s.deliveries.retry);
          var meter = document.getElementById('goal-meter');
          if (meter) {
            var goal = Number(meter.getAttribute('max'));
            meter.value = s.signatures.confirmed;
            meter.textContent = s.signatures.confirmed + ' of ' + goal;
            set('[data-stat=percent]', goal > 0 ? Math.min(100, Math.round((100 * s.signatures.confirmed) / goal)) : 0);
          }
          ['queued', 'sending', 'retry', 'sent', 'failed'].forEach(function (k) { set('#delivery-counts [data-status=' + k + ']', s.deliveries[k]); });
          if (s.waitingForDigest) set('#digest-waiting', s.waitingForDigest);
        })
        .catch(function () { /* a reload still shows them */ })
        .then(later);
    };
    later();
  }
})();
