// dwv imports jszip as an ES module; index.html loads jszip's UMD build, which sets window.JSZip.
export default window.JSZip;
