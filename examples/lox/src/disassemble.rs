//! The disassembler behind `--disassemble`: clox's `debug.c` output format,
//! over the compiler's `FunctionProto` tree.
//!
//! Functions are listed innermost first, in the order the compiler finishes
//! them (which is when clox's `DEBUG_PRINT_CODE` prints them), each under an
//! `== name ==` header; the top level is `<script>`.

use std::fmt::Write as _;

use crate::chunk::{Chunk, Constant, FunctionProto, OpCode};
use crate::number::FormatG;

/// The listing of `script` and every function nested in it.
pub fn disassemble(script: &FunctionProto) -> String {
    let mut out = String::new();
    disassemble_function(&mut out, script);
    out
}

fn disassemble_function(out: &mut String, function: &FunctionProto) {
    for constant in &function.chunk.constants {
        if let Constant::Function(inner) = constant {
            disassemble_function(out, inner);
        }
    }
    let name = function.name.as_deref().unwrap_or("<script>");
    writeln!(out, "== {name} ==").expect("writing to a String cannot fail");
    let mut offset = 0;
    while offset < function.chunk.code.len() {
        offset = instruction(out, &function.chunk, offset);
    }
}

/// How a constant prints inside a listing (clox's `printValue`).
struct ShowConstant<'a>(&'a Constant);

impl std::fmt::Display for ShowConstant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Constant::Number(n) => write!(f, "{}", FormatG(*n)),
            Constant::String(s) => f.write_str(s),
            Constant::Function(function) => match &function.name {
                Some(name) => write!(f, "<fn {name}>"),
                None => f.write_str("<script>"),
            },
        }
    }
}

/// Prints the instruction at `offset`; returns the next instruction's offset.
fn instruction(out: &mut String, chunk: &Chunk, offset: usize) -> usize {
    let code = &chunk.code;
    let byte = |i: usize| usize::from(code[offset + i]);
    let constant = |i: usize| ShowConstant(&chunk.constants[byte(i)]);
    let _ = write!(out, "{offset:04} ");
    if offset > 0 && chunk.lines[offset] == chunk.lines[offset - 1] {
        out.push_str("   | ");
    } else {
        let _ = write!(out, "{:4} ", chunk.lines[offset]);
    }
    let Some(op) = OpCode::from_byte(code[offset]) else {
        let _ = writeln!(out, "Unknown opcode {}", code[offset]);
        return offset + 1;
    };
    let name = op.name();
    match op {
        OpCode::Constant
        | OpCode::GetGlobal
        | OpCode::DefineGlobal
        | OpCode::SetGlobal
        | OpCode::GetProperty
        | OpCode::SetProperty
        | OpCode::GetSuper
        | OpCode::Class
        | OpCode::Method => {
            let _ = writeln!(out, "{name:<16} {:4} '{}'", byte(1), constant(1));
            offset + 2
        }
        OpCode::GetLocal
        | OpCode::SetLocal
        | OpCode::GetUpvalue
        | OpCode::SetUpvalue
        | OpCode::Call => {
            let _ = writeln!(out, "{name:<16} {:4}", byte(1));
            offset + 2
        }
        OpCode::Jump | OpCode::JumpIfFalse | OpCode::Loop => {
            let jump = byte(1) << 8 | byte(2);
            let target = if op == OpCode::Loop {
                (offset + 3).wrapping_sub(jump)
            } else {
                offset + 3 + jump
            };
            let _ = writeln!(out, "{name:<16} {offset:4} -> {target}");
            offset + 3
        }
        OpCode::Invoke | OpCode::SuperInvoke => {
            let _ = writeln!(
                out,
                "{name:<16} ({} args) {:4} '{}'",
                byte(2),
                byte(1),
                constant(1)
            );
            offset + 3
        }
        OpCode::Closure => {
            let _ = writeln!(out, "{name:<16} {:4} {}", byte(1), constant(1));
            let Constant::Function(function) = &chunk.constants[byte(1)] else {
                panic!("OP_CLOSURE at {offset} names a non-function constant");
            };
            let mut next = offset + 2;
            for _ in 0..function.upvalue_count {
                let kind = if code[next] == 1 { "local" } else { "upvalue" };
                let _ = writeln!(
                    out,
                    "{next:04}      |                     {kind} {}",
                    code[next + 1]
                );
                next += 2;
            }
            next
        }
        OpCode::Nil
        | OpCode::True
        | OpCode::False
        | OpCode::Pop
        | OpCode::Equal
        | OpCode::Greater
        | OpCode::Less
        | OpCode::Add
        | OpCode::Subtract
        | OpCode::Multiply
        | OpCode::Divide
        | OpCode::Not
        | OpCode::Negate
        | OpCode::Print
        | OpCode::CloseUpvalue
        | OpCode::Return
        | OpCode::Inherit => {
            out.push_str(name);
            out.push('\n');
            offset + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::disassemble;
    use crate::compiler::compile;

    #[test]
    fn listing_matches_clox_format() {
        let script =
            compile("fun f(a) {\n  return a;\n}\nwhile (f(1) < 2) print \"x\";").expect("compiles");
        let expected = "\
== f ==
0000    2 OP_GET_LOCAL        1
0002    | OP_RETURN
0003    3 OP_NIL
0004    | OP_RETURN
== <script> ==
0000    3 OP_CLOSURE          1 <fn f>
0002    | OP_DEFINE_GLOBAL    0 'f'
0004    4 OP_GET_GLOBAL       2 'f'
0006    | OP_CONSTANT         3 '1'
0008    | OP_CALL             1
0010    | OP_CONSTANT         4 '2'
0012    | OP_LESS
0013    | OP_JUMP_IF_FALSE   13 -> 23
0016    | OP_POP
0017    | OP_CONSTANT         5 'x'
0019    | OP_PRINT
0020    | OP_LOOP            20 -> 4
0023    | OP_POP
0024    | OP_NIL
0025    | OP_RETURN
";
        assert_eq!(disassemble(&script), expected);
    }

    #[test]
    fn closure_upvalues_and_invoke() {
        let script = compile("fun o() { var x; fun i() { x; } }\nclass A { m() { this.m(2); } }")
            .expect("compiles");
        let listing = disassemble(&script);
        assert!(
            listing.contains(
                "OP_CLOSURE          0 <fn i>\n0003      |                     local 1\n"
            )
        );
        assert!(listing.contains("OP_INVOKE        (1 args)    0 'm'"));
    }
}
