// Progressive enhancement of the list's bulk form: "All on this page" ticks every row's box
// as well (without JavaScript the server reads it and takes every row the page listed).
(function () {
  var all = document.querySelector("[data-select-all]");
  if (!all) return;
  var boxes = document.querySelectorAll("input[name='" + all.dataset.selectAll + "']");
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
  });
  boxes.forEach(function (box) {
    box.addEventListener("change", function () {
      if (!box.checked) all.checked = false;
    });
  });
})();
