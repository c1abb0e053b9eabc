// govmail compose page: directory suggestions into the address fields, and the attachment
// checks (R11 formats, R18 total size) done in the browser before anything is uploaded.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  if (!form) { return; }
  var maxBytes = parseInt(form.dataset.maxBytes, 10) || 0;
  var maxLabel = form.dataset.maxLabel || "";
  var allowed = (form.dataset.extensions || "").split(" ").filter(Boolean);
  var fileInput = document.getElementById("attachment");
  var totalText = document.querySelector("#attachment-total .total");
  var errorBox = document.getElementById("attachment-error");

  // "512 B", "12,5 KB", "3,2 MB", as the server writes sizes (web/pages.py human_size).
  function humanSize(size) {
    if (size < 1024) { return size + " B"; }
    var units = ["KB", "MB", "GB"];
    var value = size;
    for (var i = 0; i < units.length; i++) {
      value = value / 1024;
      if (value < 1024 || i === units.length - 1) {
        var text = value < 100 ? value.toFixed(1) : value.toFixed(0);
        return text.replace(".", ",") + " " + units[i];
      }
    }
    return size + " B";
  }

  function extension(name) {
    var dot = name.lastIndexOf(".");
    return dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
  }

  // The problem with the current attachments in Vietnamese, or "" when they may be sent.
  function check() {
    var total = 0;
    var problem = "";
    form.querySelectorAll('input[name="keep"]').forEach(function (box) {
      if (box.checked) { total += parseInt(box.dataset.size, 10) || 0; }
    });
    var files = fileInput ? Array.prototype.slice.call(fileInput.files || []) : [];
    files.forEach(function (file) {
      total += file.size;
      if (!problem && allowed.indexOf(extension(file.name)) < 0) {
        problem = "Tệp “" + file.name + "” có định dạng không được gửi qua thư công vụ (R11)." +
          " Các định dạng được phép: " + allowed.join(", ") + ".";
      }
    });
    if (totalText) { totalText.textContent = humanSize(total); }
    if (!problem && maxBytes && total > maxBytes) {
      problem = "Tổng dung lượng tệp đính kèm " + humanSize(total) + " vượt quá giới hạn " +
        maxLabel + " cho một lần gửi (R18). Hãy bớt tệp, hoặc gửi tài liệu lớn qua hệ thống" +
        " quản lý văn bản.";
    }
    if (errorBox) {
      errorBox.textContent = problem;
      errorBox.hidden = !problem;
    }
    return problem;
  }

  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target === fileInput || (target && target.name === "keep")) { check(); }
  });
  form.addEventListener("submit", function (event) {
    if (check()) {
      event.preventDefault();
      if (errorBox) { errorBox.scrollIntoView({ block: "center" }); }
    }
  });

  // A suggestion chosen: it replaces the word being typed in its field.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.suggestion") : null;
    if (!button) { return; }
    var input = form.querySelector('input[name="' + button.dataset.field + '"]');
    if (!input) { return; }
    var parts = input.value.replace(/;/g, ",").split(",");
    parts.pop();
    var kept = parts.map(function (p) { return p.trim(); }).filter(Boolean);
    kept.push(button.dataset.value);
    input.value = kept.join(", ") + ", ";
    var list = document.getElementById("suggest-" + button.dataset.field);
    if (list) { list.innerHTML = ""; }
    input.focus();
  });
  check();
})();
