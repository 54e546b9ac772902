// Progressive enhancement: with JavaScript the assignment form becomes a modal dialog;
// without it, the form above is shown inline and works as a plain POST.
(function () {
  var dialog = document.getElementById("assign-dialog");
  var opener = document.querySelector("[data-open-dialog]");
  if (!dialog || !opener || typeof dialog.showModal !== "function") return;
  dialog.removeAttribute("open");
  dialog.classList.add("modal");
  opener.hidden = false;
  opener.addEventListener("click", function () { dialog.showModal(); });
  var closer = dialog.querySelector("[data-close-dialog]");
  closer.hidden = false;
  closer.addEventListener("click", function () { dialog.close(); });
})();
