//! The TOTP enrolment URI as a QR code on the terminal, for an authenticator app to scan.
//! It shows the same secret as the printed URI, no more.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

use crate::client::CliError;

/// `text` as rows of half-block characters, two modules per character cell, quiet zone
/// included. Light modules are drawn as blocks, as on a dark terminal the blocks are the
/// bright part: scanners want dark modules on a light ground.
pub(crate) fn terminal_qr(text: &str) -> Result<String, CliError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| CliError::Input(format!("cannot draw a QR code: {e}")))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the drawing back into modules and decodes it with an independent decoder
    /// (rqrr): what the terminal shows scans to the URI.
    #[test]
    fn the_drawing_scans_back_to_the_uri() {
        let uri = "otpauth://totp/strongroom:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=strongroom&algorithm=SHA1&digits=6&period=30";
        let drawing = terminal_qr(uri).unwrap();
        // Each character holds an upper and a lower module; a block half is a light module.
        let mut rows: Vec<Vec<bool>> = Vec::new();
        for line in drawing.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    '\u{2588}' => (true, true),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected character {other:?}"),
                };
                // Light (block) -> not dark.
                top.push(!t);
                bottom.push(!b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        // Scale each module to 4x4 pixels for the detector.
        let (w, h) = (rows[0].len() * 4, rows.len() * 4);
        let mut img = rqrr::PreparedImage::prepare_from_bitmap(w, h, |x, y| rows[y / 4][x / 4]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
    }
}
