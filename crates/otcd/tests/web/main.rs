//! Black-box tests of otcd's web faces: browser session tokens (`POST /v1/sessions`), the embedded console and
//! component assets, and (in `browser`) the console and the components driven in headless Chromium.

mod assets;
mod browser;
mod sessions;
