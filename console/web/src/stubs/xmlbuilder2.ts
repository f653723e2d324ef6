// vtk.js IO/XML (pulled in by Cornerstone's Mesh / OrientationMarkerTool) imports xmlbuilder2, a Node
// library (needs 'events', 'url'). The stack viewer never reads VTK XML meshes, so stub it out.
export function create(): never {
  throw new Error("xmlbuilder2 is stubbed out in this build (VTK XML mesh I/O not supported)");
}
