//! The texts a frame draws, read from its shapes: how the first-frame test and the desktop
//! benchmark check that a frame laid out without AccessKit (as a real window runs) shows the
//! cached hosts. Shared by `#[path]` with `benches/desktop.rs`, which cannot reach test code.

/// Every text in `shapes`, in drawing order.
pub fn texts(shapes: &[egui::epaint::ClippedShape]) -> Vec<String> {
    fn walk(shape: &egui::Shape, texts: &mut Vec<String>) {
        match shape {
            egui::Shape::Text(text) => texts.push(text.galley.text().to_owned()),
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, texts)),
            _ => {}
        }
    }
    let mut texts = Vec::new();
    for clipped in shapes {
        walk(&clipped.shape, &mut texts);
    }
    texts
}
