// The connect page's script: shows the token once, copies it, saves the Ashby API key and keeps
// the connection status current. Everything goes to this page's own URL; the key and the token
// live only in the two inputs, never in storage, a URL or another element.
'use strict';

(function () {
  var main = document.getElementById('connect');
  if (!main) {
    return;
  }
  var meta = document.querySelector('meta[name="connect-csrf"]');
  var csrf = meta ? meta.getAttribute('content') : '';
  var base = window.location.pathname.replace(/\/+$/, '');
  var POLL_MS = 3000;
  var dead = false;
  var timer = null;

  var el = function (id) { return document.getElementById(id); };
  var tokenNew = el('token-new');
  var tokenBox = el('token-box');
  var tokenShown = el('token-shown');
  var tokenShownText = el('token-shown-text');
  var tokenField = el('trigger-token');
  var tokenStatus = el('token-status');
  var reveal = el('reveal-token');
  var copy = el('copy-token');
  var rotate = el('rotate-token');
  var keyForm = el('key-form');
  var keyInput = el('ashby-key');
  var keySave = el('save-ashby-key');
  var keyStatus = el('key-status');
  var keyStored = el('key-stored');
  var keyLabel = el('key-label');
  var conn = el('connection-status');
  var connTitle = el('connection-title');
  var connDetail = el('connection-detail');

  function say(node, text, tone) {
    node.textContent = text || '';
    node.className = 'status-line' + (tone ? ' ' + tone : '');
  }

  function showKeyLabel(label) {
    if (label) {
      keyLabel.textContent = label;
      keyStored.hidden = false;
    } else {
      keyStored.hidden = true;
    }
  }

  function showTokenState(state) {
    var shown = state === 'shown';
    tokenNew.hidden = shown;
    tokenShown.hidden = !shown;
  }

  function showStatus(s) {
    conn.setAttribute('data-state', s.state);
    main.setAttribute('data-status-state', s.state);
    if (connTitle.textContent !== s.title) {
      connTitle.textContent = s.title;
    }
    if (connDetail.textContent !== s.detail) {
      connDetail.textContent = s.detail;
    }
    showKeyLabel(s.key_label);
    if (s.token_shown && tokenBox.hidden) {
      showTokenState('shown');
    }
  }

  function linkDead(message) {
    dead = true;
    if (timer) {
      window.clearTimeout(timer);
    }
    conn.setAttribute('data-state', 'needs_attention');
    connTitle.textContent = 'This link no longer works.';
    connDetail.textContent = message || 'Ask the person who sent it for a new link.';
    [reveal, rotate, keySave, keyInput].forEach(function (b) { b.disabled = true; });
  }

  // A POST of `body` (with the anti-forgery token) to `path` under this page: the answer's
  // status and JSON (null when it was not JSON).
  function post(path, body) {
    body.csrf = csrf;
    return window.fetch(base + path, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().then(
        function (json) { return { status: resp.status, json: json }; },
        function () { return { status: resp.status, json: null }; }
      );
    });
  }

  function messageOf(answer) {
    if (answer && answer.json && typeof answer.json.message === 'string') {
      return answer.json.message;
    }
    return 'Something went wrong; please try again.';
  }

  function issued(answer) {
    if (answer.status === 200 && answer.json && typeof answer.json.token === 'string') {
      tokenField.value = answer.json.token;
      tokenBox.hidden = false;
      tokenNew.hidden = true;
      tokenShown.hidden = false;
      tokenShownText.textContent = 'Lost it? Issue a new one: the token Ashby uses now keeps ' +
        'working until Ashby calls with the new one.';
      say(tokenStatus, 'Here is your token. Copy it now: this page will not show it again.', 'ok');
      tokenField.focus();
      tokenField.select();
      return;
    }
    if (answer.status === 404 || answer.status === 410) {
      linkDead(messageOf(answer));
    }
    say(tokenStatus, messageOf(answer), 'bad');
  }

  function failed(node) {
    return function () { say(node, 'Something went wrong; please try again.', 'bad'); };
  }

  reveal.addEventListener('click', function () {
    reveal.disabled = true;
    post('/token', {}).then(issued, failed(tokenStatus)).then(function () {
      reveal.disabled = false;
    });
  });

  rotate.addEventListener('click', function () {
    rotate.disabled = true;
    post('/token/rotate', {}).then(issued, failed(tokenStatus)).then(function () {
      rotate.disabled = dead;
    });
  });

  copy.addEventListener('click', function () {
    var value = tokenField.value;
    var done = function () { say(tokenStatus, 'Copied. Paste it into Ashby (step 2).', 'ok'); };
    var fallback = function () {
      tokenField.focus();
      tokenField.select();
      say(tokenStatus, 'Selected: press Ctrl+C (or ⌘C) to copy it.', 'warn');
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(value).then(done, fallback);
    } else {
      fallback();
    }
  });

  keyForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var key = keyInput.value;
    keyInput.value = '';
    keySave.disabled = true;
    say(keyStatus, 'Checking the key with Ashby…', '');
    post('/ashby-key', { api_key: key }).then(function (answer) {
      var j = answer.json || {};
      var tone = j.outcome === 'stored' ? 'ok' : (j.outcome === 'stored_unverified' ? 'warn' : 'bad');
      say(keyStatus, messageOf(answer), tone);
      if (j.stored && j.key_label) {
        showKeyLabel(j.key_label);
      }
      if (answer.status === 404 || answer.status === 410) {
        linkDead(messageOf(answer));
      }
      refresh();
    }, failed(keyStatus)).then(function () {
      keySave.disabled = dead;
    });
    key = null;
  });

  function schedule() {
    if (timer) {
      window.clearTimeout(timer);
    }
    if (!dead && !document.hidden) {
      timer = window.setTimeout(refresh, POLL_MS);
    }
  }

  function refresh() {
    if (dead) {
      return;
    }
    window.fetch(base + '/status', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (resp) {
        if (resp.status === 404 || resp.status === 410) {
          return resp.json().then(function (j) { linkDead(j && j.message); },
            function () { linkDead(); });
        }
        if (resp.ok) {
          return resp.json().then(showStatus);
        }
        return null;
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(schedule);
  }

  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) {
      refresh();
    }
  });

  showTokenState(main.getAttribute('data-token-state'));
  showKeyLabel(main.getAttribute('data-key-label'));
  schedule();
}());
