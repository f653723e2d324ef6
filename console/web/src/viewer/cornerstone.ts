// The DICOM viewer: Cornerstone3D (MIT) in a Stack viewport, fed by Alpes' own DICOMweb. Each
// instance's DICOM JSON (WADO-RS `/metadata`) is registered with the loader, then its frames are
// loaded with WADO-RS (`wadors:` image ids, `.../frames/{n}`), decoded in the loader's worker.
// Tools: stack scroll (wheel), window/level (left drag), pan (middle drag, or Ctrl + left),
// zoom (right drag) and length measurement (left drag once chosen). WebGL when the browser has
// it, else Cornerstone's CPU rendering by itself.
//
// This module is loaded on demand (a dynamic import): the rest of the console does not carry it.
import {
  Enums as CoreEnums,
  getShouldUseCPURendering,
  init as coreInit,
  isCornerstoneInitialized,
  RenderingEngine,
  type Types,
} from "@cornerstonejs/core";
import { init as loaderInit, wadors } from "@cornerstonejs/dicom-image-loader";
import {
  addTool,
  annotation,
  Enums as ToolEnums,
  init as toolsInit,
  LengthTool,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

const { MouseBindings, KeyboardBindings } = ToolEnums;
const TOOLS = [StackScrollTool, WindowLevelTool, PanTool, ZoomTool, LengthTool];

export type PrimaryTool = "windowLevel" | "length";

export interface ViewerHandle {
  readonly backend: "cpu" | "gpu";
  setPrimaryTool(tool: PrimaryTool): void;
  reset(): void;
  destroy(): void;
}

/** The current bearer token (the loader's request hook is global, so it reads it each time). */
let token: () => string = () => "";
let initialized: Promise<void> | undefined;

/** Initializes Cornerstone once; requests then carry `getToken()`. */
function ensureInit(getToken: () => string): Promise<void> {
  token = getToken;
  initialized ??= (async () => {
    if (!isCornerstoneInitialized()) coreInit();
    loaderInit({
      maxWebWorkers: 1,
      beforeSend: () => {
        const headers: Record<string, string> = {};
        const t = token();
        if (t) headers.Authorization = `Bearer ${t}`;
        return headers;
      },
    });
    toolsInit();
    for (const T of TOOLS) addTool(T);
  })();
  return initialized;
}

/** An instance's frames as image ids, its DICOM JSON registered (after the loader's init, which clears it). */
export async function instanceFrames(base: string, getToken: () => string): Promise<string[]> {
  await ensureInit(getToken);
  const res = await fetch(`${base}/metadata`, {
    headers: { Accept: "application/dicom+json", Authorization: `Bearer ${getToken()}` },
  });
  if (!res.ok) throw new Error(`metadata: HTTP ${res.status}`);
  const [meta] = (await res.json()) as Record<string, { Value?: unknown[] }>[];
  if (!meta) throw new Error("metadata: empty");
  const frames = Number(meta["00280008"]?.Value?.[0] ?? 1);
  const ids: string[] = [];
  for (let f = 1; f <= frames; f++) {
    const id = `wadors:${base}/frames/${f}`;
    // One registration per frame: the loader looks each image id up.
    wadors.metaDataManager.add(id, meta as never);
    ids.push(id);
  }
  return ids;
}

let seq = 0;

/** Mounts a viewer of `imageIds` in `element` (which has its size from CSS). */
export async function mountViewer(element: HTMLDivElement, imageIds: string[], getToken: () => string): Promise<ViewerHandle> {
  await ensureInit(getToken);
  const id = `alpes-viewer-${++seq}`;
  const viewportId = `${id}-vp`;
  const engine = new RenderingEngine(`${id}-re`);
  engine.enableElement({
    viewportId,
    type: CoreEnums.ViewportType.STACK,
    element,
    defaultOptions: { background: [0, 0, 0] as Types.Point3 },
  });
  const viewport = engine.getViewport(viewportId) as Types.IStackViewport;
  const group = ToolGroupManager.createToolGroup(`${id}-tg`);
  if (!group) throw new Error("cannot create the viewer's tool group");
  for (const T of TOOLS) group.addTool(T.toolName);
  group.addViewport(viewportId, engine.id);
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  group.setToolActive(PanTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Auxiliary }, { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Ctrl }],
  });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  const setPrimaryTool = (tool: PrimaryTool) => {
    const [on, off] = tool === "length" ? [LengthTool.toolName, WindowLevelTool.toolName] : [WindowLevelTool.toolName, LengthTool.toolName];
    group.setToolPassive(off); // measurements stay visible
    group.setToolActive(on, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  };
  setPrimaryTool("windowLevel");
  const noMenu = (e: Event) => e.preventDefault(); // right drag zooms
  element.addEventListener("contextmenu", noMenu);
  const resized = new ResizeObserver(() => engine.resize(true, true));
  resized.observe(element);
  await viewport.setStack(imageIds, 0);
  viewport.render();
  return {
    backend: getShouldUseCPURendering() ? "cpu" : "gpu",
    setPrimaryTool,
    reset() {
      viewport.resetCamera();
      viewport.resetProperties();
      viewport.render();
    },
    destroy() {
      resized.disconnect();
      element.removeEventListener("contextmenu", noMenu);
      annotation.state.removeAllAnnotations();
      ToolGroupManager.destroyToolGroup(group.id);
      engine.destroy();
      element.replaceChildren();
    },
  };
}
