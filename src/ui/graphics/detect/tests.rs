use super::*;

fn env_tmux() -> Env {
    Env {
        tmux: true,
        term: "tmux-256color".into(),
        term_program: "tmux".into(),
        ..Env::default()
    }
}

#[allow(clippy::unnecessary_wraps)] // what `decide` takes
fn tmux(line: &str) -> Result<TmuxAnswers, String> {
    Ok(TmuxAnswers::parse(line))
}

fn auto_in_tmux(line: &str) -> Decision {
    decide(
        GraphicsSetting::Auto,
        &env_tmux(),
        None,
        Some(&tmux(line)),
        None,
    )
}

fn kind(d: &Decision) -> (ProtocolType, bool) {
    d.encoder
        .as_ref()
        .map_or((ProtocolType::Halfblocks, false), |e| {
            (e.protocol(), e.passthrough())
        })
}

/// What kitty 0.26.5 (Debian 12's, run under Xvfb with software GL) wrote back to
/// ratatui-image's query (`Parser::query(false, default)`: kitty graphics query, primary
/// device attributes, cell size, status), captured byte for byte from its pty: the kitty
/// graphics answer, device attributes without sixel, 9x18-pixel cells, the status report.
const KITTY_0_26_REPLY: &[u8] = b"\x1b_Gi=31;OK\x1b\\\x1b[?62;c\x1b[6;18;9t\x1b[0n";

/// What `xterm -ti vt340` (XTerm 379) wrote back to the same query, captured the same way:
/// no kitty answer, sixel (4) in its device attributes, no cell size (window ops are off).
const XTERM_VT340_REPLY: &[u8] = b"\x1b[?63;1;2;4;6;9;15;16;22;28c\x1b[0n";

/// Plain `xterm` (XTerm 379): device attributes without sixel.
const XTERM_REPLY: &[u8] = b"\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c\x1b[0n";

#[test]
fn replies_are_read_from_the_terminals_bytes() {
    let k = Replies::parse(KITTY_0_26_REPLY);
    assert!(k.answered && k.kitty && !k.sixel);
    assert_eq!(k.cell, Some((9, 18)));
    let x = Replies::parse(XTERM_VT340_REPLY);
    assert!(x.answered && !x.kitty && x.sixel);
    assert_eq!(x.cell, None);
    assert!(!Replies::parse(b"").answered);
}

#[test]
fn outside_tmux_the_answer_decides() {
    let env = Env {
        term: "xterm-kitty".into(),
        ..Env::default()
    };
    let d = decide(
        GraphicsSetting::Auto,
        &env,
        Some(&Replies::parse(KITTY_0_26_REPLY)),
        None,
        None,
    );
    assert_eq!(kind(&d), (ProtocolType::Kitty, false));
    assert_eq!(
        d.encoder
            .as_ref()
            .map(|e| (e.font().width, e.font().height)),
        Some((9, 18))
    );

    let xterm = Env {
        term: "xterm".into(),
        ..Env::default()
    };
    let d = decide(
        GraphicsSetting::Auto,
        &xterm,
        Some(&Replies::parse(XTERM_VT340_REPLY)),
        None,
        Some((7, 14)),
    );
    assert_eq!(kind(&d), (ProtocolType::Sixel, false));
    assert_eq!(
        d.encoder.as_ref().map(|e| e.font().height),
        Some(14),
        "the kernel's cell size"
    );

    // Plain xterm: device attributes without sixel.
    let d = decide(
        GraphicsSetting::Auto,
        &xterm,
        Some(&Replies::parse(XTERM_REPLY)),
        None,
        None,
    );
    assert_eq!(kind(&d), (ProtocolType::Halfblocks, false));
    assert!(d.why.contains("-ti vt340"), "{}", d.why);

    // Over SSH nothing answered: half blocks, saying so; iTerm2 by name.
    let ssh = Env {
        term: "xterm-256color".into(),
        ssh: true,
        ..Env::default()
    };
    let d = decide(GraphicsSetting::Auto, &ssh, None, None, None);
    assert_eq!(kind(&d), (ProtocolType::Halfblocks, false));
    assert!(
        d.why.contains("over SSH") && d.why.contains("--graphics"),
        "{}",
        d.why
    );
    let iterm = Env {
        lc_terminal: "iTerm2".into(),
        ..ssh
    };
    let d = decide(GraphicsSetting::Auto, &iterm, None, None, None);
    assert_eq!(kind(&d), (ProtocolType::Iterm2, false));
}

#[test]
fn inside_tmux_kitty_placeholders_come_first() {
    let d = auto_in_tmux("3.3a\t\txterm-kitty\tkitty(0.35.2)\tRGB,title\t\t");
    assert_eq!(kind(&d), (ProtocolType::Kitty, true));
    assert!(
        d.why.contains("kitty") && d.why.contains("survive"),
        "{}",
        d.why
    );
    let d = auto_in_tmux("3.5a\t1\txterm-ghostty\t\tRGB,sixel\t9\t18");
    assert_eq!(
        kind(&d),
        (ProtocolType::Kitty, true),
        "ghostty too, before tmux's sixel"
    );
    assert_eq!(
        d.encoder.as_ref().map(|e| e.font().width),
        Some(9),
        "tmux's cell size"
    );
    // kitty before 0.28 has no placeholders: the next choice (here half blocks).
    let d = auto_in_tmux("3.3a\t\txterm-kitty\tkitty(0.26.5)\tbpaste,title\t\t");
    assert_eq!(kind(&d), (ProtocolType::Halfblocks, false));
    assert!(d.why.contains("too old"), "{}", d.why);
}

#[test]
fn inside_tmux_its_own_sixel_then_passthrough_then_half_blocks() {
    let d = auto_in_tmux("3.4\t1\txterm-256color\tXTerm(390)\tRGB,sixel\t\t");
    assert_eq!(
        kind(&d),
        (ProtocolType::Sixel, false),
        "tmux draws it: no passthrough"
    );
    assert!(d.why.contains("sixel_support"), "{}", d.why);
    // tmux built without sixel, the terminal has it: through passthrough.
    let d = auto_in_tmux("3.4\t0\txterm-256color\tXTerm(390)\tsixel\t\t");
    assert_eq!(kind(&d), (ProtocolType::Sixel, true));
    assert!(d.why.contains("redrawn when tmux redraws"), "{}", d.why);
    // tmux 3.3 knows no sixel, but foot always has it.
    let d = auto_in_tmux("3.3a\t\tfoot\tfoot(1.16.2)\tRGB\t\t");
    assert_eq!(kind(&d), (ProtocolType::Sixel, true));
    // tmux with sixel, the terminal without: neither.
    let d = auto_in_tmux("3.4\t1\txterm-256color\tXTerm(390)\tRGB\t\t");
    assert_eq!(kind(&d), (ProtocolType::Halfblocks, false));
    assert!(d.why.contains("lacks the sixel feature"), "{}", d.why);
    // tmux 3.3a in xterm: nothing known.
    let d = auto_in_tmux("3.3a\t\txterm-256color\t\tbpaste,title\t\t");
    assert_eq!(kind(&d), (ProtocolType::Halfblocks, false));
    assert!(
        d.why.contains("3.4+") && d.why.contains("--graphics"),
        "{}",
        d.why
    );
    // No client attached, tmux not answering.
    assert_eq!(
        kind(&auto_in_tmux("3.3a\t\t\t\t\t\t")),
        (ProtocolType::Halfblocks, false)
    );
    let d = decide(
        GraphicsSetting::Auto,
        &env_tmux(),
        None,
        Some(&Err("no server".into())),
        None,
    );
    assert!(
        d.encoder.is_none() && d.why.contains("no server"),
        "{}",
        d.why
    );
}

#[test]
fn a_forced_protocol_is_honoured_and_wrapped_for_tmux() {
    let plain = Env::default();
    for (s, p) in [
        (GraphicsSetting::Sixel, ProtocolType::Sixel),
        (GraphicsSetting::Kitty, ProtocolType::Kitty),
        (GraphicsSetting::Iterm2, ProtocolType::Iterm2),
        (GraphicsSetting::Halfblocks, ProtocolType::Halfblocks),
    ] {
        let d = decide(s, &plain, None, None, None);
        assert_eq!(kind(&d), (p, false), "{s:?}");
        assert!(d.why.contains("--graphics"), "{}", d.why);
        let in_tmux = decide(
            s,
            &env_tmux(),
            None,
            Some(&tmux("3.3a\t\txterm\t\t\t\t")),
            None,
        );
        assert_eq!(
            kind(&in_tmux),
            (p, p != ProtocolType::Halfblocks),
            "{s:?} in tmux"
        );
    }
    // A forced sixel in a tmux that draws sixel itself needs no passthrough.
    let d = decide(
        GraphicsSetting::Sixel,
        &env_tmux(),
        None,
        Some(&tmux("3.4\t1\txterm\t\tsixel\t\t")),
        None,
    );
    assert_eq!(kind(&d), (ProtocolType::Sixel, false));
    // Nothing says the cell size: guessed.
    assert_eq!(
        decide(GraphicsSetting::Sixel, &plain, None, None, None)
            .encoder
            .map(|e| (e.font().width, e.font().height)),
        Some(GUESSED_CELL)
    );
}

#[test]
fn tmux_answers_are_parsed() {
    let a = TmuxAnswers::parse("3.4\t1\txterm-kitty\tkitty(0.35.2)\tRGB,sixel\t10\t21\n");
    assert_eq!(a.version, "3.4");
    assert_eq!(a.sixel_support, Some(true));
    assert_eq!(a.cell, Some((10, 21)));
    assert!(a.has_feature("sixel") && a.has_feature("RGB"));
    assert_eq!(a.kitty_like(), Some(("kitty", Some((0, 35)))));
    let old = TmuxAnswers::parse("3.3a\t\txterm-256color\t\tbpaste\t\t");
    assert_eq!(old.sixel_support, None);
    assert_eq!(old.cell, None);
    assert_eq!(old.kitty_like(), None);
}

#[test]
fn only_a_forced_sixel_draws_graphics_before_the_answer() {
    assert_eq!(
        stand_in(GraphicsSetting::Sixel)
            .encoder
            .map(|e| e.protocol()),
        Some(ProtocolType::Sixel)
    );
    for s in [
        GraphicsSetting::Auto,
        GraphicsSetting::Kitty,
        GraphicsSetting::Iterm2,
        GraphicsSetting::Halfblocks,
    ] {
        assert!(stand_in(s).encoder.is_none(), "{s:?}");
    }
}

#[test]
fn kitty_pictures_are_placeholders_that_carry_the_image_once() {
    let raster = Raster::from_fn(40, 20, |x, y| [(x * 6) as u8, (y * 12) as u8, 7]);
    let enc = Encoder::Kitty {
        font: FontSize::new(10, 20),
        tmux: true,
    };
    let proto = enc
        .encode(&raster, Rect::new(0, 0, 30, 10), 0)
        .expect("encodes");
    // 40x20 fitted into 300x200 pixels (whole enlargements: 280x140), in 10x20 cells.
    let (pw, ph) = raster.fit_size(300, 200);
    let cells = Size::new(pw.div_ceil(10) as u16, ph.div_ceil(20) as u16);
    assert_eq!(proto.size(), cells);
    let mut buf = ratatui::buffer::Buffer::empty(Rect::new(0, 0, 30, 10));
    ratatui::widgets::Widget::render(
        ratatui_image::Image::new(&proto),
        Rect::new(0, 0, 30, 10),
        &mut buf,
    );
    let first = buf[(0, 0)].symbol();
    assert!(
        first.starts_with("\x1bPtmux;\x1b\x1b_Gq=2,i="),
        "transmitted through passthrough"
    );
    assert!(
        first.contains("a=T,U=1,f=32"),
        "a virtual placement for placeholders"
    );
    assert!(first.ends_with('\u{10EEEE}') || first.contains('\u{10EEEE}'));
    // Every other cell is a placeholder (no image data), in the id's colour.
    let fg = buf[(0, 0)].fg;
    for y in 0..cells.height {
        for x in 0..cells.width {
            let c = &buf[(x, y)];
            assert!(c.symbol().contains('\u{10EEEE}'), "({x}, {y})");
            assert_eq!(c.fg, fg);
            if (x, y) != (0, 0) {
                assert!(!c.symbol().contains('\x1b'));
            }
        }
    }
    // Drawn again (a redraw): no second transmission.
    let mut again = ratatui::buffer::Buffer::empty(Rect::new(0, 0, 30, 10));
    ratatui::widgets::Widget::render(
        ratatui_image::Image::new(&proto),
        Rect::new(0, 0, 30, 10),
        &mut again,
    );
    assert!(!again[(0, 0)].symbol().contains('\x1b'));
}
