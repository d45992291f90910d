// Login page: sends the form's credentials to /auth with fetch and shows the
// server's message for every failure. On success the browser stores the
// session cookie and moves on to the page named by data-next.
"use strict";

(function () {
  const main = document.getElementById("main");
  const apiUrl = main.dataset.apiUrl || "";
  const nextPath = main.dataset.next || "/dashboard";
  const errorBox = document.getElementById("login-error");
  const retryBox = document.getElementById("login-retry");
  const forms = Array.from(document.querySelectorAll("#password-form, #key-form"));
  let retryTimer = null;

  // What the server's "Unauthorized: Developer status: X" response means for the
  // person at the keyboard. The status stays in the message for support requests.
  const statusExplanations = {
    PENDING: "Your account is waiting for approval by a portal administrator.",
    REJECTED: "Your account request was rejected. Contact the portal administrators.",
    REVOKED: "Your access to this portal was revoked. Contact the portal administrators.",
  };

  // Encode "email:password" as UTF-8 before base64, because btoa accepts only
  // Latin-1 and the server decodes Basic credentials as UTF-8.
  function basicAuthorization(email, password) {
    const bytes = new TextEncoder().encode(email + ":" + password);
    let binary = "";
    bytes.forEach(function (byte) { binary += String.fromCharCode(byte); });
    return "Basic " + btoa(binary);
  }

  function formatSeconds(seconds) {
    if (seconds < 60) {
      return seconds + (seconds === 1 ? " second" : " seconds");
    }
    const minutes = Math.floor(seconds / 60);
    const rest = seconds % 60;
    const minuteText = minutes + (minutes === 1 ? " minute" : " minutes");
    if (rest === 0) {
      return minuteText;
    }
    return minuteText + " " + formatSeconds(rest);
  }

  function setBusy(busy) {
    forms.forEach(function (form) {
      form.querySelector("button[type=submit]").disabled = busy;
    });
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearMessages() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    retryBox.hidden = true;
    retryBox.textContent = "";
    if (retryTimer !== null) {
      clearInterval(retryTimer);
      retryTimer = null;
    }
  }

  // Count down a Retry-After delay and keep the buttons disabled until it ends.
  function startRetryCountdown(seconds) {
    let left = seconds;
    setBusy(true);
    retryBox.hidden = false;
    retryBox.textContent = "You can try again in " + formatSeconds(left) + ".";
    retryTimer = setInterval(function () {
      left -= 1;
      if (left <= 0) {
        clearInterval(retryTimer);
        retryTimer = null;
        retryBox.textContent = "You can try again now.";
        setBusy(false);
        return;
      }
      retryBox.textContent = "You can try again in " + formatSeconds(left) + ".";
    }, 1000);
  }

  function explainStatus(message) {
    const match = /^Unauthorized: Developer status: ([A-Z]+)$/.exec(message);
    if (match && statusExplanations[match[1]]) {
      return statusExplanations[match[1]] + " (Developer status: " + match[1] + ")";
    }
    return message;
  }

  async function readMessage(response) {
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") {
        return body.message;
      }
    } catch (error) {
      // Not JSON, such as an error page from a proxy: fall through.
    }
    return "Login failed with HTTP status " + response.status + ".";
  }

  async function logIn(headers, body) {
    clearMessages();
    setBusy(true);
    let response;
    try {
      response = await fetch(apiUrl + "/auth", {
        method: "POST",
        headers: Object.assign({
          "Accept": "application/json",
          // Without this header the server adds a Basic challenge to a 401,
          // and the browser would open its own password dialog.
          "X-Requested-With": "XMLHttpRequest",
        }, headers),
        body: body,
        // Send and accept the session cookie even when the API is on a
        // sibling subdomain (PORTAL_API_URL).
        credentials: "include",
      });
    } catch (error) {
      setBusy(false);
      showError("Could not reach the portal API at " + (apiUrl || window.location.origin) +
        ". Check your connection and try again.");
      return;
    }

    if (response.ok) {
      window.location.assign(nextPath);
      return;
    }

    const message = await readMessage(response);
    if (response.status === 503) {
      const end = /[.!?]$/.test(message) ? " " : ". ";
      showError(message + end + "The portal cannot reach its session store. Try again in a moment.");
    } else {
      showError(explainStatus(message));
    }

    // Cross-origin responses hide Retry-After unless the API exposes it, so the
    // server's message (which states the wait for a lockout) is shown as well.
    const retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
    if (retryAfter > 0) {
      startRetryCountdown(retryAfter);
    } else {
      setBusy(false);
    }
  }

  const passwordForm = document.getElementById("password-form");
  if (passwordForm) {
    passwordForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const email = passwordForm.elements.email.value.trim();
      const password = passwordForm.elements.password.value;
      if (!email || !password) {
        showError("Enter your email and password.");
        return;
      }
      if (email.indexOf(":") !== -1) {
        showError("An email address cannot contain a colon.");
        return;
      }
      logIn({ "Authorization": basicAuthorization(email, password) }, null);
    });
  }

  const keyForm = document.getElementById("key-form");
  if (keyForm) {
    keyForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const key = keyForm.elements.api_key.value.trim();
      if (!key) {
        showError("Enter your API key.");
        return;
      }
      const name = keyForm.dataset.keyName;
      if (keyForm.dataset.keyLocation === "body") {
        logIn({}, new URLSearchParams([[name, key]]));
      } else {
        const headers = {};
        headers[name] = key;
        logIn(headers, null);
      }
    });
  }
})();
