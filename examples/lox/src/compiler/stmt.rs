//! Declarations and statements.
//!
//! Each follows the book's grammar and emits the book's code shape. After a
//! declaration that reported an error the parser resynchronises at the next
//! statement boundary (`synchronize`), so one mistake yields one message.

use super::{ClassState, Compiler, FunctionKind, OpCode, TokenKind};

impl Compiler<'_> {
    pub(super) fn declaration(&mut self) {
        if self.matches(TokenKind::Class) {
            self.class_declaration();
        } else if self.matches(TokenKind::Fun) {
            self.fun_declaration();
        } else if self.matches(TokenKind::Var) {
            self.var_declaration();
        } else {
            self.statement();
        }
        if self.panic_mode {
            self.synchronize();
        }
    }

    /// Skips tokens up to a likely statement boundary and leaves panic mode.
    fn synchronize(&mut self) {
        self.panic_mode = false;
        while self.current.kind != TokenKind::Eof {
            if self.previous.kind == TokenKind::Semicolon {
                return;
            }
            match self.current.kind {
                TokenKind::Class
                | TokenKind::Fun
                | TokenKind::Var
                | TokenKind::For
                | TokenKind::If
                | TokenKind::While
                | TokenKind::Print
                | TokenKind::Return => return,
                _ => self.advance(),
            }
        }
    }

    fn class_declaration(&mut self) {
        self.consume(TokenKind::Identifier, "Expect class name.");
        let class_name = self.previous;
        let name_constant = self.identifier_constant(class_name.lexeme);
        self.declare_variable();
        self.emit_op_arg(OpCode::Class, name_constant);
        self.define_variable(name_constant);

        self.classes.push(ClassState {
            has_superclass: false,
        });
        if self.matches(TokenKind::Less) {
            self.consume(TokenKind::Identifier, "Expect superclass name.");
            self.variable(false);
            if class_name.lexeme == self.previous.lexeme {
                self.error("A class can't inherit from itself.");
            }
            // `super` is a local of a scope around the methods, so each
            // method's closure captures the superclass.
            self.begin_scope();
            self.add_local("super");
            self.define_variable(0);
            self.named_variable(class_name, false);
            self.emit_op(OpCode::Inherit);
            if let Some(class) = self.classes.last_mut() {
                class.has_superclass = true;
            }
        }

        self.named_variable(class_name, false);
        self.consume(TokenKind::LeftBrace, "Expect '{' before class body.");
        while !self.check(TokenKind::RightBrace) && !self.check(TokenKind::Eof) {
            self.method();
        }
        self.consume(TokenKind::RightBrace, "Expect '}' after class body.");
        self.emit_op(OpCode::Pop);

        let class = self.classes.pop().expect("pushed above");
        if class.has_superclass {
            self.end_scope();
        }
    }

    fn method(&mut self) {
        self.consume(TokenKind::Identifier, "Expect method name.");
        let name = self.previous.lexeme;
        let constant = self.identifier_constant(name);
        let kind = if name == "init" {
            FunctionKind::Initializer
        } else {
            FunctionKind::Method
        };
        self.function_body(kind);
        self.emit_op_arg(OpCode::Method, constant);
    }

    fn fun_declaration(&mut self) {
        let global = self.parse_variable("Expect function name.");
        // A function may refer to itself: it is initialised before its body.
        self.mark_initialized();
        self.function_body(FunctionKind::Function);
        self.define_variable(global);
    }

    fn var_declaration(&mut self) {
        let global = self.parse_variable("Expect variable name.");
        if self.matches(TokenKind::Equal) {
            self.expression();
        } else {
            self.emit_op(OpCode::Nil);
        }
        self.consume(
            TokenKind::Semicolon,
            "Expect ';' after variable declaration.",
        );
        self.define_variable(global);
    }

    fn statement(&mut self) {
        if self.matches(TokenKind::Print) {
            self.print_statement();
        } else if self.matches(TokenKind::For) {
            self.for_statement();
        } else if self.matches(TokenKind::If) {
            self.if_statement();
        } else if self.matches(TokenKind::Return) {
            self.return_statement();
        } else if self.matches(TokenKind::While) {
            self.while_statement();
        } else if self.matches(TokenKind::LeftBrace) {
            self.begin_scope();
            self.block();
            self.end_scope();
        } else {
            self.expression_statement();
        }
    }

    /// The declarations up to a `}` (the `{` was consumed).
    pub(super) fn block(&mut self) {
        while !self.check(TokenKind::RightBrace) && !self.check(TokenKind::Eof) {
            self.declaration();
        }
        self.consume(TokenKind::RightBrace, "Expect '}' after block.");
    }

    fn print_statement(&mut self) {
        self.expression();
        self.consume(TokenKind::Semicolon, "Expect ';' after value.");
        self.emit_op(OpCode::Print);
    }

    fn expression_statement(&mut self) {
        self.expression();
        self.consume(TokenKind::Semicolon, "Expect ';' after expression.");
        self.emit_op(OpCode::Pop);
    }

    fn return_statement(&mut self) {
        if self.function().kind == FunctionKind::Script {
            self.error("Can't return from top-level code.");
        }
        if self.matches(TokenKind::Semicolon) {
            self.emit_return();
            return;
        }
        if self.function().kind == FunctionKind::Initializer {
            self.error("Can't return a value from an initializer.");
        }
        self.expression();
        self.consume(TokenKind::Semicolon, "Expect ';' after return value.");
        self.emit_op(OpCode::Return);
    }

    fn if_statement(&mut self) {
        self.consume(TokenKind::LeftParen, "Expect '(' after 'if'.");
        self.expression();
        self.consume(TokenKind::RightParen, "Expect ')' after condition.");
        let then_jump = self.emit_jump(OpCode::JumpIfFalse);
        self.emit_op(OpCode::Pop);
        self.statement();
        let else_jump = self.emit_jump(OpCode::Jump);
        self.patch_jump(then_jump);
        self.emit_op(OpCode::Pop);
        if self.matches(TokenKind::Else) {
            self.statement();
        }
        self.patch_jump(else_jump);
    }

    fn while_statement(&mut self) {
        let loop_start = self.chunk().code.len();
        self.consume(TokenKind::LeftParen, "Expect '(' after 'while'.");
        self.expression();
        self.consume(TokenKind::RightParen, "Expect ')' after condition.");
        let exit_jump = self.emit_jump(OpCode::JumpIfFalse);
        self.emit_op(OpCode::Pop);
        self.statement();
        self.emit_loop(loop_start);
        self.patch_jump(exit_jump);
        self.emit_op(OpCode::Pop);
    }

    /// `for (init; condition; increment) body`. The loop variable is one
    /// variable for the whole loop, as in the book: closures created in
    /// different iterations share it.
    fn for_statement(&mut self) {
        self.begin_scope();
        self.consume(TokenKind::LeftParen, "Expect '(' after 'for'.");
        if self.matches(TokenKind::Semicolon) {
            // No initializer.
        } else if self.matches(TokenKind::Var) {
            self.var_declaration();
        } else {
            self.expression_statement();
        }

        let mut loop_start = self.chunk().code.len();
        let exit_jump = if self.matches(TokenKind::Semicolon) {
            None
        } else {
            self.expression();
            self.consume(TokenKind::Semicolon, "Expect ';' after loop condition.");
            let jump = self.emit_jump(OpCode::JumpIfFalse);
            self.emit_op(OpCode::Pop);
            Some(jump)
        };

        if !self.matches(TokenKind::RightParen) {
            let body_jump = self.emit_jump(OpCode::Jump);
            let increment_start = self.chunk().code.len();
            self.expression();
            self.emit_op(OpCode::Pop);
            self.consume(TokenKind::RightParen, "Expect ')' after for clauses.");
            self.emit_loop(loop_start);
            loop_start = increment_start;
            self.patch_jump(body_jump);
        }

        self.statement();
        self.emit_loop(loop_start);
        if let Some(exit_jump) = exit_jump {
            self.patch_jump(exit_jump);
            self.emit_op(OpCode::Pop);
        }
        self.end_scope();
    }
}

#[cfg(test)]
mod tests {
    use crate::chunk::{Constant, FunctionProto, OpCode as Op};
    use crate::compiler::compile;

    fn code(source: &str) -> FunctionProto {
        compile(source).unwrap_or_else(|errors| panic!("{errors:?}"))
    }

    fn bytes(ops: &[(Op, &[u8])]) -> Vec<u8> {
        ops.iter()
            .flat_map(|(op, operands)| std::iter::once(*op as u8).chain(operands.iter().copied()))
            .collect()
    }

    fn errors(source: &str) -> Vec<String> {
        compile(source)
            .expect_err("should not compile")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn arithmetic_and_print() {
        let script = code("print 1 + 2 * 3;");
        assert_eq!(
            script.chunk.code,
            bytes(&[
                (Op::Constant, &[0]),
                (Op::Constant, &[1]),
                (Op::Constant, &[2]),
                (Op::Multiply, &[]),
                (Op::Add, &[]),
                (Op::Print, &[]),
                (Op::Nil, &[]),
                (Op::Return, &[]),
            ])
        );
        assert_eq!(
            script.chunk.constants,
            vec![
                Constant::Number(1.0),
                Constant::Number(2.0),
                Constant::Number(3.0)
            ]
        );
        assert_eq!(script.chunk.lines, vec![1; script.chunk.code.len()]);
    }

    #[test]
    fn comparison_operators_use_not() {
        let script = code("1 <= 2;");
        assert_eq!(
            script.chunk.code,
            bytes(&[
                (Op::Constant, &[0]),
                (Op::Constant, &[1]),
                (Op::Greater, &[]),
                (Op::Not, &[]),
                (Op::Pop, &[]),
                (Op::Nil, &[]),
                (Op::Return, &[]),
            ])
        );
    }

    #[test]
    fn locals_globals_and_blocks() {
        let script = code("var g = 1; { var l = g; l = 2; }");
        assert_eq!(
            script.chunk.code,
            bytes(&[
                (Op::Constant, &[1]),
                (Op::DefineGlobal, &[0]),
                (Op::GetGlobal, &[2]),
                (Op::Constant, &[3]),
                (Op::SetLocal, &[1]),
                (Op::Pop, &[]),
                (Op::Pop, &[]),
                (Op::Nil, &[]),
                (Op::Return, &[]),
            ])
        );
        assert_eq!(script.chunk.constants[0], Constant::String("g".into()));
    }

    #[test]
    fn closures_capture_locals() {
        let script = code("fun outer() { var x = 1; fun inner() { return x; } }");
        let Constant::Function(outer) = &script.chunk.constants[1] else {
            panic!("expected a function constant");
        };
        assert_eq!(outer.name.as_deref(), Some("outer"));
        let Constant::Function(inner) = &outer.chunk.constants[1] else {
            panic!("expected a function constant");
        };
        assert_eq!(inner.upvalue_count, 1);
        assert_eq!(
            inner.chunk.code,
            bytes(&[
                (Op::GetUpvalue, &[0]),
                (Op::Return, &[]),
                (Op::Nil, &[]),
                (Op::Return, &[])
            ])
        );
        // OP_CLOSURE 1, then (is_local = 1, index = 1): local slot 1 is x.
        assert!(
            outer
                .chunk
                .code
                .windows(4)
                .any(|w| w == [Op::Closure as u8, 1, 1, 1])
        );
        // x is captured, so leaving outer's scope... happens by returning.
        assert_eq!(outer.upvalue_count, 0);
    }

    #[test]
    fn jumps_are_patched() {
        let script = code("if (true) print 1; else print 2;");
        assert_eq!(
            script.chunk.code,
            bytes(&[
                (Op::True, &[]),
                (Op::JumpIfFalse, &[0, 7]),
                (Op::Pop, &[]),
                (Op::Constant, &[0]),
                (Op::Print, &[]),
                (Op::Jump, &[0, 4]),
                (Op::Pop, &[]),
                (Op::Constant, &[1]),
                (Op::Print, &[]),
                (Op::Nil, &[]),
                (Op::Return, &[]),
            ])
        );
    }

    #[test]
    fn methods_invoke_and_initializers_return_this() {
        let script = code("class A { init() {} m() { this.m(1); } }");
        // Constants: 0 "A" (OP_CLASS), 1 "A" (reload for the methods),
        // 2 "init", 3 init's code, 4 "m", 5 m's code.
        let Constant::Function(init) = &script.chunk.constants[3] else {
            panic!("expected init");
        };
        assert_eq!(
            init.chunk.code,
            bytes(&[(Op::GetLocal, &[0]), (Op::Return, &[])])
        );
        let Constant::Function(method) = &script.chunk.constants[5] else {
            panic!("expected m");
        };
        assert_eq!(
            &method.chunk.code[..7],
            &bytes(&[
                (Op::GetLocal, &[0]),
                (Op::Constant, &[1]),
                (Op::Invoke, &[0, 1])
            ])[..]
        );
    }

    #[test]
    fn error_formats_and_recovery() {
        assert_eq!(
            errors("print 1 +;\nvar = 2;\nprint"),
            vec![
                "[line 1] Error at ';': Expect expression.",
                "[line 2] Error at '=': Expect variable name.",
                "[line 3] Error at end: Expect expression.",
            ]
        );
        assert_eq!(
            errors("print \"abc"),
            // Panic mode hides the follow-on "Expect expression.".
            vec!["[line 1] Error: Unterminated string."]
        );
        assert_eq!(
            errors("a + b = c;"),
            vec!["[line 1] Error at '=': Invalid assignment target."]
        );
    }
}
