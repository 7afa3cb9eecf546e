// The ARIA tabs pattern over markup that also reads well without it: the tab
// list starts hidden and every panel shown; this shows one panel at a time.
// Arrow keys, Home and End move between tabs and select them.

export function setUpTabs(root, { initial } = {}) {
  const list = root.querySelector("[data-tablist]");
  if (!list) return null;
  const tabs = Array.from(list.querySelectorAll('[role="tab"]'));
  const panels = tabs.map((tab) => document.getElementById(tab.getAttribute("aria-controls")));

  function select(index, { focus = false } = {}) {
    tabs.forEach((tab, position) => {
      const selected = position === index;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      panels[position].hidden = !selected;
    });
    if (focus) tabs[index].focus();
  }

  list.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) select(tabs.indexOf(tab));
  });
  list.addEventListener("keydown", (event) => {
    const current = tabs.indexOf(document.activeElement);
    if (current < 0) return;
    const moves = {
      ArrowRight: (current + 1) % tabs.length,
      ArrowLeft: (current - 1 + tabs.length) % tabs.length,
      Home: 0,
      End: tabs.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(moves[event.key], { focus: true });
  });

  // The first panel holding a field the server refused opens first.
  const refused = panels.findIndex((panel) => panel.querySelector(".field-invalid"));
  const start = refused >= 0 ? refused : Math.max(tabs.findIndex((t) => t.dataset.tab === initial), 0);
  list.hidden = false;
  root.classList.add("tabs-ready");
  select(start);
  return {
    focusSelected: () => tabs.find((tab) => tab.tabIndex === 0)?.focus(),
  };
}
