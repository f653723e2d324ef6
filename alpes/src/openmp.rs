//! Tesseract (the engine's burned-in text recognizer) runs its LSTM on OpenMP, and libgomp reads
//! its settings once, when it is loaded, before `main`. Left to itself it starts a team of
//! spinning threads for every recognition, beside the engine's own rayon threads: on 2 cores that
//! made ultrasound images with text 2.6 times slower. The engine already runs one recognition per
//! thread, so OpenMP gets one thread: when `OMP_THREAD_LIMIT` is not set, the process starts
//! itself again with it set to 1 (an operator's own value is kept).

use std::ffi::OsString;

/// The variable libgomp caps its threads with.
const LIMIT: &str = "OMP_THREAD_LIMIT";

/// Re-executes this process with `OMP_THREAD_LIMIT=1` unless the variable is set. Returns only
/// when it is set already, or when the re-exec failed (then Alpes runs, only slower).
#[cfg(unix)]
pub fn one_openmp_thread() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(LIMIT).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let err = std::process::Command::new(exe).args(args).env(LIMIT, "1").exec();
    eprintln!("alpes: could not restart with {LIMIT}=1 ({err}); burned-in text recognition will be slower");
}

/// Elsewhere there is no exec: Alpes runs as it is.
#[cfg(not(unix))]
pub fn one_openmp_thread() {}
