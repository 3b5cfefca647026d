//! Expressions: the Pratt parser.
//!
//! `rule` is the book's parse-rule table as a `match`: for each token kind,
//! the parser to run when the token starts an expression (prefix), the one to
//! run when it follows an operand (infix), and the infix precedence.
//! `parse_precedence` parses anything at or above a precedence level; whether
//! an assignment may follow is threaded through as `can_assign`, which is how
//! `a + b = c` is rejected with "Invalid assignment target.".

use super::{Compiler, Constant, FunctionKind, OpCode, Token, TokenKind};

/// Binding power, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Precedence {
    None,
    Assignment,
    Or,
    And,
    Equality,
    Comparison,
    Term,
    Factor,
    Unary,
    Call,
    Primary,
}

impl Precedence {
    /// One level tighter: the right operand's precedence for a
    /// left-associative binary operator.
    fn next(self) -> Precedence {
        match self {
            Precedence::None => Precedence::Assignment,
            Precedence::Assignment => Precedence::Or,
            Precedence::Or => Precedence::And,
            Precedence::And => Precedence::Equality,
            Precedence::Equality => Precedence::Comparison,
            Precedence::Comparison => Precedence::Term,
            Precedence::Term => Precedence::Factor,
            Precedence::Factor => Precedence::Unary,
            Precedence::Unary => Precedence::Call,
            Precedence::Call | Precedence::Primary => Precedence::Primary,
        }
    }
}

type ParseFn<'src> = fn(&mut Compiler<'src>, bool);

struct Rule<'src> {
    prefix: Option<ParseFn<'src>>,
    infix: Option<ParseFn<'src>>,
    precedence: Precedence,
}

fn rule<'src>(kind: TokenKind) -> Rule<'src> {
    use Precedence as P;
    use TokenKind as K;
    let (prefix, infix, precedence): (Option<ParseFn<'src>>, Option<ParseFn<'src>>, _) = match kind
    {
        K::LeftParen => (Some(Compiler::grouping), Some(Compiler::call), P::Call),
        K::Dot => (None, Some(Compiler::dot), P::Call),
        K::Minus => (Some(Compiler::unary), Some(Compiler::binary), P::Term),
        K::Plus => (None, Some(Compiler::binary), P::Term),
        K::Slash | K::Star => (None, Some(Compiler::binary), P::Factor),
        K::Bang => (Some(Compiler::unary), None, P::None),
        K::BangEqual | K::EqualEqual => (None, Some(Compiler::binary), P::Equality),
        K::Greater | K::GreaterEqual | K::Less | K::LessEqual => {
            (None, Some(Compiler::binary), P::Comparison)
        }
        K::Identifier => (Some(Compiler::variable), None, P::None),
        K::String => (Some(Compiler::string), None, P::None),
        K::Number => (Some(Compiler::number), None, P::None),
        K::And => (None, Some(Compiler::and), P::And),
        K::Or => (None, Some(Compiler::or), P::Or),
        K::False | K::Nil | K::True => (Some(Compiler::literal), None, P::None),
        K::Super => (Some(Compiler::super_), None, P::None),
        K::This => (Some(Compiler::this), None, P::None),
        _ => (None, None, P::None),
    };
    Rule {
        prefix,
        infix,
        precedence,
    }
}

impl<'src> Compiler<'src> {
    pub(super) fn expression(&mut self) {
        self.parse_precedence(Precedence::Assignment);
    }

    fn parse_precedence(&mut self, precedence: Precedence) {
        self.advance();
        let Some(prefix) = rule(self.previous.kind).prefix else {
            self.error("Expect expression.");
            return;
        };
        let can_assign = precedence <= Precedence::Assignment;
        prefix(self, can_assign);
        while precedence <= rule(self.current.kind).precedence {
            self.advance();
            let infix = rule(self.previous.kind)
                .infix
                .expect("every token with a precedence has an infix rule");
            infix(self, can_assign);
        }
        if can_assign && self.matches(TokenKind::Equal) {
            self.error("Invalid assignment target.");
        }
    }

    fn number(&mut self, _can_assign: bool) {
        let value: f64 = self
            .previous
            .lexeme
            .parse()
            .expect("the scanner only makes well-formed number tokens");
        self.emit_constant(Constant::Number(value));
    }

    fn string(&mut self, _can_assign: bool) {
        let lexeme = self.previous.lexeme;
        let text = &lexeme[1..lexeme.len() - 1];
        self.emit_constant(Constant::String(text.into()));
    }

    fn literal(&mut self, _can_assign: bool) {
        match self.previous.kind {
            TokenKind::False => self.emit_op(OpCode::False),
            TokenKind::Nil => self.emit_op(OpCode::Nil),
            TokenKind::True => self.emit_op(OpCode::True),
            kind => unreachable!("no literal rule for {kind:?}"),
        }
    }

    fn grouping(&mut self, _can_assign: bool) {
        self.expression();
        self.consume(TokenKind::RightParen, "Expect ')' after expression.");
    }

    fn unary(&mut self, _can_assign: bool) {
        let operator = self.previous.kind;
        self.parse_precedence(Precedence::Unary);
        match operator {
            TokenKind::Bang => self.emit_op(OpCode::Not),
            TokenKind::Minus => self.emit_op(OpCode::Negate),
            kind => unreachable!("no unary rule for {kind:?}"),
        }
    }

    fn binary(&mut self, _can_assign: bool) {
        let operator = self.previous.kind;
        self.parse_precedence(rule(operator).precedence.next());
        let (op, negate) = match operator {
            TokenKind::BangEqual => (OpCode::Equal, true),
            TokenKind::EqualEqual => (OpCode::Equal, false),
            TokenKind::Greater => (OpCode::Greater, false),
            TokenKind::GreaterEqual => (OpCode::Less, true),
            TokenKind::Less => (OpCode::Less, false),
            TokenKind::LessEqual => (OpCode::Greater, true),
            TokenKind::Plus => (OpCode::Add, false),
            TokenKind::Minus => (OpCode::Subtract, false),
            TokenKind::Star => (OpCode::Multiply, false),
            TokenKind::Slash => (OpCode::Divide, false),
            kind => unreachable!("no binary rule for {kind:?}"),
        };
        self.emit_op(op);
        if negate {
            self.emit_op(OpCode::Not);
        }
    }

    fn and(&mut self, _can_assign: bool) {
        let end_jump = self.emit_jump(OpCode::JumpIfFalse);
        self.emit_op(OpCode::Pop);
        self.parse_precedence(Precedence::And);
        self.patch_jump(end_jump);
    }

    fn or(&mut self, _can_assign: bool) {
        let else_jump = self.emit_jump(OpCode::JumpIfFalse);
        let end_jump = self.emit_jump(OpCode::Jump);
        self.patch_jump(else_jump);
        self.emit_op(OpCode::Pop);
        self.parse_precedence(Precedence::Or);
        self.patch_jump(end_jump);
    }

    fn call(&mut self, _can_assign: bool) {
        let argc = self.argument_list();
        self.emit_op_arg(OpCode::Call, argc);
    }

    fn argument_list(&mut self) -> u8 {
        let mut argc: u8 = 0;
        if !self.check(TokenKind::RightParen) {
            loop {
                self.expression();
                if argc == 255 {
                    self.error("Can't have more than 255 arguments.");
                } else {
                    argc += 1;
                }
                if !self.matches(TokenKind::Comma) {
                    break;
                }
            }
        }
        self.consume(TokenKind::RightParen, "Expect ')' after arguments.");
        argc
    }

    fn dot(&mut self, can_assign: bool) {
        self.consume(TokenKind::Identifier, "Expect property name after '.'.");
        let name = self.identifier_constant(self.previous.lexeme);
        if can_assign && self.matches(TokenKind::Equal) {
            self.expression();
            self.emit_op_arg(OpCode::SetProperty, name);
        } else if self.matches(TokenKind::LeftParen) {
            let argc = self.argument_list();
            self.emit_op_arg(OpCode::Invoke, name);
            self.emit_byte(argc);
        } else {
            self.emit_op_arg(OpCode::GetProperty, name);
        }
    }

    pub(super) fn variable(&mut self, can_assign: bool) {
        self.named_variable(self.previous, can_assign);
    }

    /// Emits a read of `name`, or with `= value` following and `can_assign`,
    /// a write: local, upvalue or global, resolved innermost first.
    pub(super) fn named_variable(&mut self, name: Token<'src>, can_assign: bool) {
        let level = self.functions.len() - 1;
        let (get, set, operand) = if let Some(slot) = self.resolve_local(level, name.lexeme) {
            (OpCode::GetLocal, OpCode::SetLocal, slot)
        } else if let Some(index) = self.resolve_upvalue(level, name.lexeme) {
            (OpCode::GetUpvalue, OpCode::SetUpvalue, index)
        } else {
            let constant = self.identifier_constant(name.lexeme);
            (OpCode::GetGlobal, OpCode::SetGlobal, constant)
        };
        if can_assign && self.matches(TokenKind::Equal) {
            self.expression();
            self.emit_op_arg(set, operand);
        } else {
            self.emit_op_arg(get, operand);
        }
    }

    fn this(&mut self, _can_assign: bool) {
        if self.classes.is_empty() {
            self.error("Can't use 'this' outside of a class.");
            return;
        }
        self.variable(false);
    }

    fn super_(&mut self, _can_assign: bool) {
        match self.classes.last() {
            None => self.error("Can't use 'super' outside of a class."),
            Some(class) if !class.has_superclass => {
                self.error("Can't use 'super' in a class with no superclass.");
            }
            Some(_) => {}
        }
        self.consume(TokenKind::Dot, "Expect '.' after 'super'.");
        self.consume(TokenKind::Identifier, "Expect superclass method name.");
        let name = self.identifier_constant(self.previous.lexeme);
        self.named_variable(Token::synthetic("this"), false);
        if self.matches(TokenKind::LeftParen) {
            let argc = self.argument_list();
            self.named_variable(Token::synthetic("super"), false);
            self.emit_op_arg(OpCode::SuperInvoke, name);
            self.emit_byte(argc);
        } else {
            self.named_variable(Token::synthetic("super"), false);
            self.emit_op_arg(OpCode::GetSuper, name);
        }
    }

    /// Compiles a function's parameters and body (the name was just
    /// consumed) and emits the `OP_CLOSURE` that creates it.
    pub(super) fn function_body(&mut self, kind: FunctionKind) {
        let name = self.previous.lexeme;
        self.begin_function(kind, Some(name));
        self.begin_scope();
        self.consume(TokenKind::LeftParen, "Expect '(' after function name.");
        if !self.check(TokenKind::RightParen) {
            loop {
                let function = self.function();
                if function.proto.arity == 255 {
                    self.error_at_current("Can't have more than 255 parameters.");
                } else {
                    function.proto.arity += 1;
                }
                let constant = self.parse_variable("Expect parameter name.");
                self.define_variable(constant);
                if !self.matches(TokenKind::Comma) {
                    break;
                }
            }
        }
        self.consume(TokenKind::RightParen, "Expect ')' after parameters.");
        self.consume(TokenKind::LeftBrace, "Expect '{' before function body.");
        self.block();
        // No end_scope: the frame's slots all go when the function returns.
        let (proto, upvalues) = self.end_function();
        let constant = self.make_constant(Constant::Function(Box::new(proto)));
        self.emit_op_arg(OpCode::Closure, constant);
        for upvalue in upvalues {
            self.emit_byte(u8::from(upvalue.is_local));
            self.emit_byte(upvalue.index);
        }
    }
}
