// Sortable and filterable tables: click a header to sort by that column (again to reverse),
// type in the box above a table to keep the rows that contain the text. Numbers sort by
// their data-sort value where a cell has one, by their text otherwise.
"use strict";
(function () {
  function key(row, i) {
    const td = row.children[i];
    if (!td) return "";
    if (td.dataset.sort !== undefined) return parseFloat(td.dataset.sort);
    const text = td.textContent.trim();
    const n = parseFloat(text.replace(/[^0-9eE.+-]/g, ""));
    return /^[-+]?[0-9.]/.test(text) && !isNaN(n) ? n : text.toLowerCase();
  }
  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, i) {
      th.addEventListener("click", function () {
        const up = !th.classList.contains("asc");
        heads.forEach(h => h.classList.remove("asc", "desc"));
        th.classList.add(up ? "asc" : "desc");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort(function (a, b) {
          const x = key(a, i), y = key(b, i);
          const blank = (v) => v === "" || v === "—" || (typeof v === "number" && isNaN(v));
          if (blank(x) !== blank(y)) return blank(x) ? 1 : -1;  // blanks last either way
          const order = typeof x === "number" && typeof y === "number" ? x - y
            : String(x).localeCompare(String(y));
          return up ? order : -order;
        });
        rows.forEach(r => body.appendChild(r));
      });
    });
  }
  for (const box of document.querySelectorAll("input.filter")) {
    const table = box.nextElementSibling.querySelector("table");
    box.addEventListener("input", function () {
      const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (const row of table.tBodies[0].rows) {
        const text = row.textContent.toLowerCase();
        row.hidden = !words.every(w => text.includes(w));
      }
    });
  }
})();
