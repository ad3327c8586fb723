// Draw the workflow diagrams from their Mermaid text. Without JavaScript the text stays readable.
(function () {
  if (!window.mermaid) { return; }
  window.mermaid.initialize({
    startOnLoad: false,
    securityLevel: "strict",
    theme: "neutral",
    fontFamily: '"Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", system-ui, sans-serif'
  });
  window.mermaid.run({ querySelector: "pre.mermaid" }).then(function () {
    document.documentElement.setAttribute("data-diagrams", "ready");
  }).catch(function () {
    document.documentElement.setAttribute("data-diagrams", "failed");
  });
})();
