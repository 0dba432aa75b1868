// The console's only script (the Content-Security-Policy allows no other). Pages work without
// it except for the full check and live health; text from answers is set as text, and the
// HTML it inserts is rendered (and escaped) by the server.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Plain http on another host is no secure context: the older way still works there.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  document.body.appendChild(area);
  area.select();
  const done = document.execCommand("copy");
  area.remove();
  return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

function setupCopy() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => {
      const source = document.getElementById(button.dataset.copy);
      const status = button.parentElement.querySelector(".status");
      copyText(source.textContent).then(
        () => { if (status) status.textContent = "Copied to the clipboard"; },
        () => { if (status) status.textContent = "Copy failed: select the text and copy it"; },
      );
    });
  }
}

function showSteps(list, steps) {
  list.replaceChildren();
  for (const step of steps) {
    const item = document.createElement("li");
    item.textContent = `${step.label}: ${step.items} ${step.unit} on ${step.pages} page(s)` +
      (step.done ? " ✓" : " …");
    list.appendChild(item);
  }
}

function setupCheck() {
  const button = document.getElementById("full-check");
  const form = document.getElementById("try-form");
  if (!button || !form) return;
  const section = document.getElementById("check");
  const state = document.getElementById("check-state");
  const progress = document.getElementById("check-progress");
  const steps = document.getElementById("check-steps");
  const report = document.getElementById("check-report");
  button.addEventListener("click", async () => {
    if (!form.reportValidity()) return;
    // Credentials travel in the POST body only, never in a URL.
    const body = new URLSearchParams(new FormData(form));
    button.disabled = true;
    section.hidden = false;
    report.replaceChildren();
    steps.replaceChildren();
    progress.removeAttribute("value");
    state.textContent = "starting";
    try {
      const started = await fetch(button.dataset.check, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      });
      const job = await started.json();
      if (!started.ok) throw new Error(job.error ? job.error.message : started.statusText);
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 400));
        const answer = await fetch(job.status, { credentials: "same-origin" });
        const status = await answer.json();
        if (!answer.ok) throw new Error(status.error ? status.error.message : answer.statusText);
        state.textContent = `${status.state}, ${status.elapsed} s` +
          (status.current ? `: ${status.current}` : "");
        showSteps(steps, status.steps);
        if (status.state !== "running") {
          progress.value = 1;
          progress.max = 1;
          if (status.html) report.innerHTML = status.html;
          if (status.error) report.textContent = status.error;
          break;
        }
      }
    } catch (error) {
      state.textContent = `failed: ${error.message}`;
      progress.value = 0;
    } finally {
      button.disabled = false;
    }
  });
}

function setupLive() {
  const live = document.querySelector("[data-live]");
  if (!live) return;
  const every = Number(live.dataset.every) || 2000;
  const refresh = async () => {
    try {
      const answer = await fetch(live.dataset.live, { credentials: "same-origin" });
      if (answer.status === 401) {
        window.location.assign("/console/login");
        return;
      }
      if (answer.ok) live.innerHTML = await answer.text();
    } catch (error) {
      // The bridge restarting: try again next time.
    }
  };
  setInterval(refresh, every);
}

setupCopy();
setupCheck();
setupLive();
