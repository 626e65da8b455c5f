// The progress page's live bar: polls the progress endpoint each second, moves the bar,
// and goes to the completed or failed page when processing ends. Without scripts, the
// page's "Check progress again" link does the same by hand.
(function () {
  "use strict";
  var area = document.getElementById("progress-area");
  if (!area || !window.fetch) {
    return;
  }
  var bar = document.getElementById("progress-bar");
  var info = document.getElementById("progress-info");
  var url = area.getAttribute("data-progress-url");

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("progress answered " + response.status);
        }
        return response.json();
      })
      .then(function (answer) {
        bar.value = answer.progress;
        bar.textContent = answer.progress + "%";
        if (info.textContent !== answer.info) {
          info.textContent = answer.info;
        }
        if (answer.state === "completed" || answer.state === "failed") {
          window.location.assign(answer.next);
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        window.setTimeout(poll, 3000);
      });
  }

  window.setTimeout(poll, 500);
})();
