//! A tiny classic-BPF assembler: instructions with symbolic labels, resolved
//! into `sock_filter`s. Conditional jumps reach at most 255 instructions
//! ahead; longer distances go through `ja`, whose offset is 32 bits.

use super::SeccompError;

/// struct sock_filter.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub const LD_ABS_W: u16 = 0x20; // A = *(u32 *)(data + k)
pub const AND_K: u16 = 0x54; // A &= k
pub const JEQ_K: u16 = 0x15;
pub const JGT_K: u16 = 0x25;
pub const JGE_K: u16 = 0x35;
pub const JA: u16 = 0x05;
pub const RET_K: u16 = 0x06;

/// A jump target, or "fall through to the next instruction".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Next,
    Label(usize),
}

#[derive(Debug, Clone)]
enum Item {
    Stmt(u16, u32),
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(usize),
    Label(usize),
}

/// A program under construction.
#[derive(Debug, Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    pub fn bind(&mut self, label: usize) {
        self.items.push(Item::Label(label));
    }

    pub fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt(LD_ABS_W, offset));
    }

    pub fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt(AND_K, k));
    }

    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt(RET_K, k));
    }

    pub fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }

    pub fn ja(&mut self, label: usize) {
        self.items.push(Item::Ja(label));
    }

    /// Resolves labels into a program.
    pub fn finish(self) -> Result<Vec<SockFilter>, SeccompError> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for item in &self.items {
            match item {
                Item::Label(l) => at[*l] = pc,
                _ => pc += 1,
            }
        }
        let mut out = Vec::with_capacity(pc);
        for item in &self.items {
            let here = out.len();
            let rel = |t: Target| -> Result<u8, SeccompError> {
                match t {
                    Target::Next => Ok(0),
                    Target::Label(l) => u8::try_from(at[l] - here - 1).map_err(|_| {
                        SeccompError::TooLarge("a conditional jump exceeds 255 instructions".into())
                    }),
                }
            };
            match *item {
                Item::Label(_) => {}
                Item::Stmt(code, k) => out.push(SockFilter {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                }),
                Item::Jump { code, k, jt, jf } => out.push(SockFilter {
                    code,
                    jt: rel(jt)?,
                    jf: rel(jf)?,
                    k,
                }),
                Item::Ja(l) => out.push(SockFilter {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: (at[l] - here - 1) as u32,
                }),
            }
        }
        if out.len() > 4096 {
            return Err(SeccompError::TooLarge(format!(
                "{} instructions (the kernel takes 4096)",
                out.len()
            )));
        }
        Ok(out)
    }
}
