// dwv imports konva as an ES module; index.html loads konva's UMD build, which sets window.Konva.
export default window.Konva;
