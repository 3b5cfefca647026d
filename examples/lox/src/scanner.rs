//! The scanner: turns source text into tokens on demand, as clox does.
//!
//! The compiler pulls one token at a time (`Scanner::scan_token`), so no token
//! vector is ever built. A token borrows its lexeme from the source. Errors are
//! tokens too (`TokenKind::Error`), whose lexeme is the message; the compiler
//! reports them in the book's format (`[line N] Error: message`).
//!
//! The scanner works on bytes, since every character with a meaning in Lox is
//! ASCII. A byte outside that set (including the first byte of a multi-byte
//! UTF-8 character) is an "Unexpected character."; the whole character is
//! skipped so that lexemes stay valid `str` slices. Inside string literals and
//! comments any UTF-8 is fine.

/// The kind of a token: the book's `TokenType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    // Single-character tokens.
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Dot,
    Minus,
    Plus,
    Semicolon,
    Slash,
    Star,
    // One or two character tokens.
    Bang,
    BangEqual,
    Equal,
    EqualEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    // Literals.
    Identifier,
    String,
    Number,
    // Keywords.
    And,
    Class,
    Else,
    False,
    For,
    Fun,
    If,
    Nil,
    Or,
    Print,
    Return,
    Super,
    This,
    True,
    Var,
    While,
    /// A scanning error; the lexeme is the message.
    Error,
    /// The end of the source.
    Eof,
}

/// One token: its kind, its text (or error message) and its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'src> {
    /// What the token is.
    pub kind: TokenKind,
    /// The source text of the token, or the message of an error token.
    pub lexeme: &'src str,
    /// The line the token ends on (a multi-line string reports its last line,
    /// as in clox).
    pub line: u32,
}

impl<'src> Token<'src> {
    /// A token that appears in no source: the compiler's `this` and `super`
    /// locals. Its line is never reported.
    pub fn synthetic(lexeme: &'static str) -> Token<'src> {
        Token {
            kind: TokenKind::Identifier,
            lexeme,
            line: 0,
        }
    }
}

/// Produces the tokens of one source text, one per call.
pub struct Scanner<'src> {
    source: &'src str,
    /// Byte offset of the first character of the token being scanned.
    start: usize,
    /// Byte offset of the next character to read.
    current: usize,
    line: u32,
}

impl<'src> Scanner<'src> {
    /// A scanner positioned at the start of `source`, on line 1.
    pub fn new(source: &'src str) -> Scanner<'src> {
        Scanner {
            source,
            start: 0,
            current: 0,
            line: 1,
        }
    }

    /// Scans and returns the next token; after the end it returns `Eof`
    /// forever.
    pub fn scan_token(&mut self) -> Token<'src> {
        self.skip_whitespace();
        self.start = self.current;
        let Some(c) = self.advance() else {
            return self.make(TokenKind::Eof);
        };
        if is_alpha(c) {
            return self.identifier();
        }
        if c.is_ascii_digit() {
            return self.number();
        }
        let kind = match c {
            b'(' => TokenKind::LeftParen,
            b')' => TokenKind::RightParen,
            b'{' => TokenKind::LeftBrace,
            b'}' => TokenKind::RightBrace,
            b';' => TokenKind::Semicolon,
            b',' => TokenKind::Comma,
            b'.' => TokenKind::Dot,
            b'-' => TokenKind::Minus,
            b'+' => TokenKind::Plus,
            b'/' => TokenKind::Slash,
            b'*' => TokenKind::Star,
            b'!' => self.pick(TokenKind::BangEqual, TokenKind::Bang),
            b'=' => self.pick(TokenKind::EqualEqual, TokenKind::Equal),
            b'<' => self.pick(TokenKind::LessEqual, TokenKind::Less),
            b'>' => self.pick(TokenKind::GreaterEqual, TokenKind::Greater),
            b'"' => return self.string(),
            _ => {
                // Skip the rest of a multi-byte character so that the next
                // token starts on a character boundary.
                while !self.source.is_char_boundary(self.current) {
                    self.current += 1;
                }
                return self.error("Unexpected character.");
            }
        };
        self.make(kind)
    }

    fn peek(&self) -> Option<u8> {
        self.source.as_bytes().get(self.current).copied()
    }

    fn peek_next(&self) -> Option<u8> {
        self.source.as_bytes().get(self.current + 1).copied()
    }

    fn advance(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.current += 1;
        Some(c)
    }

    /// `two` if the next character is `=` (consuming it), else `one`.
    fn pick(&mut self, two: TokenKind, one: TokenKind) -> TokenKind {
        if self.peek() == Some(b'=') {
            self.current += 1;
            two
        } else {
            one
        }
    }

    fn make(&self, kind: TokenKind) -> Token<'src> {
        Token {
            kind,
            lexeme: &self.source[self.start..self.current],
            line: self.line,
        }
    }

    fn error(&self, message: &'static str) -> Token<'src> {
        Token {
            kind: TokenKind::Error,
            lexeme: message,
            line: self.line,
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\r' | b'\t' => self.current += 1,
                b'\n' => {
                    self.line += 1;
                    self.current += 1;
                }
                b'/' if self.peek_next() == Some(b'/') => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.current += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn string(&mut self) -> Token<'src> {
        loop {
            match self.advance() {
                None => return self.error("Unterminated string."),
                Some(b'"') => return self.make(TokenKind::String),
                Some(b'\n') => self.line += 1,
                Some(_) => {}
            }
        }
    }

    fn number(&mut self) -> Token<'src> {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.current += 1;
        }
        if self.peek() == Some(b'.') && self.peek_next().is_some_and(|c| c.is_ascii_digit()) {
            self.current += 1;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.current += 1;
            }
        }
        self.make(TokenKind::Number)
    }

    fn identifier(&mut self) -> Token<'src> {
        while self
            .peek()
            .is_some_and(|c| is_alpha(c) || c.is_ascii_digit())
        {
            self.current += 1;
        }
        let kind = keyword(&self.source[self.start..self.current]);
        self.make(kind)
    }
}

fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// The keyword `text` spells, or `Identifier`.
fn keyword(text: &str) -> TokenKind {
    match text {
        "and" => TokenKind::And,
        "class" => TokenKind::Class,
        "else" => TokenKind::Else,
        "false" => TokenKind::False,
        "for" => TokenKind::For,
        "fun" => TokenKind::Fun,
        "if" => TokenKind::If,
        "nil" => TokenKind::Nil,
        "or" => TokenKind::Or,
        "print" => TokenKind::Print,
        "return" => TokenKind::Return,
        "super" => TokenKind::Super,
        "this" => TokenKind::This,
        "true" => TokenKind::True,
        "var" => TokenKind::Var,
        "while" => TokenKind::While,
        _ => TokenKind::Identifier,
    }
}

#[cfg(test)]
mod tests {
    use super::{Scanner, Token, TokenKind as K};

    fn scan(source: &str) -> Vec<Token<'_>> {
        let mut scanner = Scanner::new(source);
        let mut tokens = Vec::new();
        loop {
            let token = scanner.scan_token();
            tokens.push(token);
            if token.kind == K::Eof {
                return tokens;
            }
        }
    }

    fn kinds(source: &str) -> Vec<K> {
        scan(source).iter().map(|t| t.kind).collect()
    }

    #[test]
    fn punctuators() {
        assert_eq!(
            kinds("(){};,+-*!===<=>=!=<>/."),
            vec![
                K::LeftParen,
                K::RightParen,
                K::LeftBrace,
                K::RightBrace,
                K::Semicolon,
                K::Comma,
                K::Plus,
                K::Minus,
                K::Star,
                K::BangEqual,
                K::EqualEqual,
                K::LessEqual,
                K::GreaterEqual,
                K::BangEqual,
                K::Less,
                K::Greater,
                K::Slash,
                K::Dot,
                K::Eof
            ]
        );
    }

    #[test]
    fn keywords_and_identifiers() {
        let source = "and class else false for fun if nil or print return super this true var while \
                      andy _x x1 classy Fun";
        let expected = [
            K::And,
            K::Class,
            K::Else,
            K::False,
            K::For,
            K::Fun,
            K::If,
            K::Nil,
            K::Or,
            K::Print,
            K::Return,
            K::Super,
            K::This,
            K::True,
            K::Var,
            K::While,
            K::Identifier,
            K::Identifier,
            K::Identifier,
            K::Identifier,
            K::Identifier,
            K::Eof,
        ];
        assert_eq!(kinds(source), expected);
        let tokens = scan(source);
        assert_eq!(tokens[16].lexeme, "andy");
        assert_eq!(tokens[17].lexeme, "_x");
    }

    #[test]
    fn numbers() {
        let tokens = scan("123 123.456 .5 5.");
        let lexemes: Vec<_> = tokens.iter().map(|t| (t.kind, t.lexeme)).collect();
        assert_eq!(
            lexemes,
            vec![
                (K::Number, "123"),
                (K::Number, "123.456"),
                (K::Dot, "."),
                (K::Number, "5"),
                (K::Number, "5"),
                (K::Dot, "."),
                (K::Eof, ""),
            ]
        );
    }

    #[test]
    fn strings_keep_quotes_and_count_lines() {
        let tokens = scan("\"\" \"a\nb\" x");
        assert_eq!(tokens[0].lexeme, "\"\"");
        assert_eq!(tokens[1].lexeme, "\"a\nb\"");
        assert_eq!(tokens[1].line, 2);
        assert_eq!(tokens[2].line, 2);
    }

    #[test]
    fn comments_and_whitespace() {
        let tokens = scan("// c1\n\t x // c2\r\n  // c3");
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].lexeme, "x");
        assert_eq!(tokens[0].line, 2);
        assert_eq!(tokens[1].line, 3);
    }

    #[test]
    fn errors() {
        let tokens = scan("\"abc");
        assert_eq!(tokens[0].kind, K::Error);
        assert_eq!(tokens[0].lexeme, "Unterminated string.");
        let tokens = scan("a | é b");
        assert_eq!(tokens[1].kind, K::Error);
        assert_eq!(tokens[1].lexeme, "Unexpected character.");
        assert_eq!(tokens[2].lexeme, "Unexpected character.");
        assert_eq!(tokens[3].lexeme, "b");
    }
}
