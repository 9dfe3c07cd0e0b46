// The ipywidgets controls typeset their labels through MathJax 2's API
// (MathJax.Hub.Queue); this book loads MathJax 3, which has no Hub. Route
// those calls to MathJax 3's typesetPromise instead of failing.
(function () {
  if (window.MathJax && !window.MathJax.Hub) {
    window.MathJax.Hub = {
      Queue: function (command) {
        var element = Array.isArray(command) ? command[2] : undefined;
        if (element && window.MathJax.typesetPromise) {
          window.MathJax.startup.promise
            .then(function () { return window.MathJax.typesetPromise([element]); })
            .catch(function () {});
        }
      },
    };
  }
})();
