// dwv imports magic-wand-tool as an ES module; index.html loads its browser build (window.MagicWand).
export default window.MagicWand;
