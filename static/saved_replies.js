// Progressive enhancement of the reply box's saved replies. With JavaScript, Insert fills the
// chosen reply in at the cursor (through POST /api/saved-replies/{id}/render) and offers its
// files as checked boxes ("Attach from the saved reply: ..."), which Send attaches; nothing
// else on the page changes. Without it, the same button sends the reply form to
// /tickets/{pid}/saved-reply, which shows the page again with the reply filled in and its
// files offered the same way.
(function () {
  var button = document.getElementById("saved-reply-insert");
  var select = document.getElementById("saved-reply");
  var box = document.getElementById("reply-body");
  var status = document.getElementById("saved-reply-status");
  var files = document.getElementById("saved-reply-files");
  if (!button || !select || !box || !status || !files || !window.fetch) return;
  var form = button.form;

  // As the page writes it (the `filesize` filter of supportdesk/web/templating.py).
  function sizeText(bytes) {
    if (bytes < 1000) return bytes + " bytes";
    if (bytes < 1000 * 1000) return Math.round(bytes / 1000) + " KB";
    return (bytes / 1000 / 1000).toFixed(1) + " MB";
  }

  // Each file once: one already offered (inserted before) is checked again.
  function offerFiles(list) {
    (list || []).forEach(function (file) {
      var value = String(file.id);
      var boxes = files.querySelectorAll("input[name=saved_reply_file]");
      for (var i = 0; i < boxes.length; i++) {
        if (boxes[i].value === value) { boxes[i].checked = true; return; }
      }
      var label = document.createElement("label");
      label.className = "checkbox";
      var input = document.createElement("input");
      input.type = "checkbox";
      input.name = "saved_reply_file";
      input.value = value;
      input.checked = true;
      var size = document.createElement("span");
      size.className = "muted small";
      size.textContent = "(" + sizeText(file.size) + ")";
      label.appendChild(input);
      label.appendChild(document.createTextNode(" Attach from the saved reply: " + file.filename + " "));
      label.appendChild(size);
      files.appendChild(label);
    });
  }

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
        offerFiles(data.files);
      });
    }).catch(function (error) {
      status.textContent = error.message;
      status.hidden = false;
    }).then(function () { button.disabled = false; });
  });
})();
