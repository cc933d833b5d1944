//! `q` ends `--all`'s live view. While the view is up, the terminal on stdin is in cbreak
//! mode (keys arrive one by one, unechoed; Ctrl-C still sends SIGINT), and it is put back as
//! it was when the view ends, however it ends (`Drop`). Only a foreground process takes the
//! terminal: one started with `&` would be stopped (SIGTTOU) for trying.

use std::io::IsTerminal;
use std::os::fd::{BorrowedFd, RawFd};

pub struct Keys {
    fd: RawFd,
    saved: libc::termios,
}

impl Keys {
    /// Takes the terminal on stdin, if there is one and memwatch is in its foreground.
    pub fn take_terminal() -> Option<Keys> {
        let fd = libc::STDIN_FILENO;
        if !std::io::stdin().is_terminal() {
            return None;
        }
        // SAFETY: plain queries of our own stdin and process group.
        let foreground = unsafe { libc::tcgetpgrp(fd) == libc::getpgrp() };
        if !foreground {
            return None;
        }
        // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is our stdin, a terminal.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 0;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: as above; the settings are restored on drop.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return None;
        }
        Some(Keys { fd, saved })
    }

    /// Readable when a key was pressed.
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: stdin stays open for the life of the process.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// Reads the keys pressed so far: whether one was `q` (or `Q`).
    pub fn quit_pressed(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut quit = false;
        loop {
            // SAFETY: reading into our buffer; VMIN 0 and VTIME 0 make it return at once.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return quit;
            }
            quit |= buf[..n as usize].iter().any(|&b| b == b'q' || b == b'Q');
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        // SAFETY: puts back the settings read when the terminal was taken.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}
