// Dashboard: sends the key and session forms with fetch, redraws the tables
// from the JSON responses, and logs out through the portal API. Every form also
// works without this script, as a plain POST with its CSRF token field.
"use strict";

(function () {
  const main = document.getElementById("main");
  const csrfToken = main.dataset.csrfToken;
  const apiUrl = main.dataset.apiUrl || "";
  const loginUrl = main.dataset.loginUrl;
  const meUrl = main.dataset.meUrl;
  const logoutArg = main.dataset.logoutArg;
  const logoutMethod = main.dataset.logoutMethod;
  const messageBox = document.getElementById("dashboard-message");
  const statusBox = document.getElementById("dashboard-status");
  const keysUrl = document.getElementById("create-key-form").action;
  let expiryTimer = null;

  function goToExpiredLogin() {
    window.location.assign(loginUrl + "?expired=1");
  }

  function showMessage(text) {
    messageBox.textContent = text;
    messageBox.hidden = false;
  }

  function showStatus(text) {
    statusBox.textContent = text;
    statusBox.hidden = false;
  }

  function clearMessage() {
    messageBox.hidden = true;
    messageBox.textContent = "";
    statusBox.hidden = true;
    statusBox.textContent = "";
  }

  function formatUtc(seconds) {
    if (seconds === null || seconds === undefined) {
      return "";
    }
    return new Date(seconds * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function codeCell(row, text) {
    const td = document.createElement("td");
    const code = document.createElement("code");
    code.textContent = text + "\u2026";
    td.appendChild(code);
    row.appendChild(td);
  }

  function csrfField() {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = "csrf_token";
    input.value = csrfToken;
    return input;
  }

  // Send a dashboard form as a JSON call. Returns the parsed body, or null
  // after the failure was shown (or the page was sent to the login page).
  async function postForm(form) {
    clearMessage();
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST",
        headers: {
          "Accept": "application/json",
          "X-Requested-With": "XMLHttpRequest",
          "X-CSRF-Token": csrfToken,
        },
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
      });
    } catch (error) {
      showMessage("Could not reach the portal. Check your connection and try again.");
      return null;
    }
    if (response.status === 401) {
      goToExpiredLogin();
      return null;
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      if (body && body.message) {
        showMessage(body.message);
      } else {
        showMessage("The request failed with HTTP status " + response.status + ".");
      }
      return null;
    }
    return body || {};
  }

  function renderKeys(keys) {
    const tbody = document.getElementById("keys-body");
    tbody.replaceChildren();
    if (keys.length === 0) {
      const row = document.createElement("tr");
      cell(row, "You have no API keys yet.").colSpan = 6;
      tbody.appendChild(row);
      return;
    }
    keys.forEach(function (key) {
      const row = document.createElement("tr");
      codeCell(row, key.prefix);
      cell(row, key.name || "");
      cell(row, formatUtc(key.created_at));
      cell(row, key.last_used_at ? formatUtc(key.last_used_at) : "never");
      cell(row, key.revoked_at ? formatUtc(key.revoked_at) : "no");
      const actions = cell(row, "");
      if (!key.revoked_at) {
        const form = document.createElement("form");
        form.className = "revoke-key-form";
        form.method = "post";
        form.action = keysUrl + "/" + encodeURIComponent(key.id) + "/revoke";
        form.appendChild(csrfField());
        const button = document.createElement("button");
        button.type = "submit";
        button.textContent = "Revoke";
        button.setAttribute("aria-label", "Revoke key " + key.prefix);
        form.appendChild(button);
        actions.appendChild(form);
      }
      tbody.appendChild(row);
    });
  }

  function renderSessions(sessions) {
    const tbody = document.getElementById("sessions-body");
    tbody.replaceChildren();
    sessions.forEach(function (item) {
      const row = document.createElement("tr");
      codeCell(row, item.prefix);
      cell(row, formatUtc(item.created_at));
      cell(row, formatUtc(item.expires_at));
      cell(row, item.current ? "this session" : "");
      tbody.appendChild(row);
    });
  }

  document.getElementById("create-key-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const form = event.currentTarget;
    const body = await postForm(form);
    if (!body) {
      return;
    }
    document.getElementById("new-key-value").value = body.key;
    const panel = document.getElementById("new-key");
    panel.hidden = false;
    document.getElementById("new-key-value").focus();
    form.reset();
    renderKeys(body.api_keys);
  });

  // Revoke buttons are redrawn with the table, so one listener on the table
  // body handles them all.
  document.getElementById("keys-body").addEventListener("submit", async function (event) {
    const form = event.target;
    if (!form.classList.contains("revoke-key-form")) {
      return;
    }
    event.preventDefault();
    if (!window.confirm("Revoke this API key? Programs that use it will stop working.")) {
      return;
    }
    const body = await postForm(form);
    if (body) {
      renderKeys(body.api_keys);
    }
  });

  document.querySelectorAll(".revoke-sessions-form").forEach(function (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const everything = form.elements.scope.value === "all";
      if (everything && !window.confirm("Log out every session, including this one?")) {
        return;
      }
      const body = await postForm(form);
      if (!body) {
        return;
      }
      if (everything) {
        window.location.assign(loginUrl);
        return;
      }
      renderSessions(body.sessions);
      showStatus(body.message);
    });
  });

  document.getElementById("copy-key").addEventListener("click", async function () {
    const field = document.getElementById("new-key-value");
    try {
      await navigator.clipboard.writeText(field.value);
      showStatus("The key was copied to the clipboard.");
    } catch (error) {
      field.select();
      showMessage("Copying failed. The key is selected: press Ctrl+C or Cmd+C.");
    }
  });

  document.getElementById("logout-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const init = {
      method: logoutMethod,
      headers: { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" },
      credentials: "include",
    };
    let url = apiUrl + "/auth";
    if (logoutMethod === "DELETE") {
      url += "?" + encodeURIComponent(logoutArg) + "=true";
    } else {
      init.body = new URLSearchParams(new FormData(event.currentTarget));
    }
    try {
      const response = await fetch(url, init);
      if (!response.ok) {
        showMessage("Logging out failed with HTTP status " + response.status + ". Try again.");
        return;
      }
    } catch (error) {
      showMessage("Could not reach the portal API. Check your connection and try again.");
      return;
    }
    window.location.assign(loginUrl);
  });

  // Ask the server whether the session still exists. Called when the tab is
  // shown again and when the session's expiry time passes, but never on a
  // timer that would keep an idle session alive.
  async function checkSession() {
    let response;
    try {
      response = await fetch(meUrl, {
        headers: { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" },
        credentials: "same-origin",
      });
    } catch (error) {
      return;
    }
    if (response.status === 401) {
      goToExpiredLogin();
      return;
    }
    if (response.ok) {
      const body = await response.json();
      scheduleExpiryCheck(body.session.expires);
    }
  }

  function scheduleExpiryCheck(expires) {
    if (expiryTimer !== null) {
      clearTimeout(expiryTimer);
    }
    const delay = expires * 1000 - Date.now() + 1000;
    // setTimeout overflows above about 24.8 days; the tab check covers longer sessions.
    if (delay > 0 && delay < 2147483647) {
      expiryTimer = setTimeout(checkSession, delay);
    }
    const time = document.getElementById("session-expires");
    time.textContent = formatUtc(expires);
    time.dateTime = new Date(expires * 1000).toISOString().slice(0, 19) + "Z";
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      checkSession();
    }
  });

  const expires = parseInt(main.dataset.sessionExpires, 10);
  if (expires > 0) {
    scheduleExpiryCheck(expires);
  }
})();
