// Progressive enhancement of the reply box's saved replies. With JavaScript, Insert fills the
// chosen reply in at the cursor (through POST /api/saved-replies/{id}/render) and nothing
// else on the page changes; without it, the same button sends the reply form to
// /tickets/{pid}/saved-reply, which shows the page again with the reply filled in.
(function () {
  var button = document.getElementById("saved-reply-insert");
  var select = document.getElementById("saved-reply");
  var box = document.getElementById("reply-body");
  var status = document.getElementById("saved-reply-status");
  if (!button || !select || !box || !status || !window.fetch) return;
  var form = button.form;

  function insertAtCursor(text) {
    var start = box.selectionStart, end = box.selectionEnd, value = box.value;
    box.value = value.slice(0, start) + text + value.slice(end);
    box.selectionStart = box.selectionEnd = start + text.length;
    box.focus();
  }

  function refusal(data) {
    var error = (data && data.error) || {};
    var details = error.details || {};
    var parts = [error.message || "The saved reply could not be inserted."];
    Object.keys(details).forEach(function (name) { parts.push(details[name]); });
    return parts.join(" ");
  }

  button.addEventListener("click", function (event) {
    event.preventDefault();
    status.hidden = true;
    button.disabled = true;
    fetch("/api/saved-replies/" + encodeURIComponent(select.value) + "/render", {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": form.querySelector("input[name=csrf_token]").value
      },
      body: JSON.stringify({ pid: button.getAttribute("data-pid") })
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(refusal(data));
        insertAtCursor(data.text);
      });
    }).catch(function (error) {
      status.textContent = error.message;
      status.hidden = false;
    }).then(function () { button.disabled = false; });
  });
})();
