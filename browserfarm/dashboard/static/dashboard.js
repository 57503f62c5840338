// The dashboard's few behaviours, for every page (base.html loads this; no build step).

// A failed htmx request says why in the page's message area: the words of the
// farm's error page (its alert), or that the farm did not answer.
function showError(text, source) {
  const messages = document.getElementById("messages");
  if (!messages) return;
  let shown = messages.querySelector(".message.error[data-from-htmx]");
  if (!shown) {
    shown = document.createElement("p");
    shown.className = "message error";
    shown.setAttribute("role", "alert");
    shown.dataset.fromHtmx = "yes";
    messages.prepend(shown);
  }
  shown.textContent = text;
  shown.source = source;
  shown.scrollIntoView({block: "nearest"});
}

function errorWords(xhr) {
  if (xhr.getResponseHeader("HX-Redirect")) return null;  // htmx goes there itself
  const page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  const alert = page.querySelector("main [role=alert]");
  const words = alert ? alert.textContent.trim() : "";
  return words || `The farm answered ${xhr.status} ${xhr.statusText || ""}`.trim() + ".";
}

document.addEventListener("htmx:responseError", (event) => {
  const words = errorWords(event.detail.xhr);
  if (words) showError(words, event.detail.elt);
});
document.addEventListener("htmx:sendError", (event) => {
  showError("The farm did not answer: check that it runs and the network, then try again.",
            event.detail.elt);
});
// The same request succeeding clears its error (a poll that failed once).
document.addEventListener("htmx:afterRequest", (event) => {
  const shown = document.querySelector("#messages .message.error[data-from-htmx]");
  if (shown && event.detail.successful && shown.source === event.detail.elt) shown.remove();
});

// A form or button with data-confirm asks before it is sent (deleting, mostly).
document.addEventListener("submit", (event) => {
  const words = event.submitter?.dataset.confirm || event.target.dataset.confirm;
  if (words && !window.confirm(words)) event.preventDefault();
}, true);

// A window's form shows the fields of the chosen proxy source only (its own proxy, or
// one from the pool); a method set through the API ("keep") shows neither.
function showProxyParts(select) {
  for (const part of select.form.querySelectorAll("[data-when-method]")) {
    part.hidden = part.dataset.whenMethod !== select.value;
  }
}
document.addEventListener("change", (event) => {
  if (event.target.matches("select[name=proxyMethod]")) showProxyParts(event.target);
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("select[name=proxyMethod]").forEach(showProxyParts);
});
