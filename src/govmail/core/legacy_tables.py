"""Byte tables of the legacy Vietnamese encodings Python lacks: TCVN3 (ABC), VISCII, VNI.

Generated once from glibc iconv charmaps (``iconv -f TCVN5712-1``, ``iconv -f VISCII``)
and public converter tables; nothing calls iconv at run time (CI may lack the charmaps).

- TCVN3: glibc's TCVN5712-1, i.e. TCVN 5712:1993 VN1. The ABC fonts (.VnTime) use its VN3
  subset: lower-case letters with tones at 0xB5-0xFE, Ă Â Ê Ô Ơ Ư Đ ă â ê ô ơ ư đ at
  0xA1-0xAE (ư is 0xAD, the soft hyphen of cp1252), tones as combining marks at
  0xB0-0xB4. VN1 adds upper-case letters with tones at C0 control positions and at
  0x80-0x9F, which ABC text never holds (upper-case fonts such as .VnTimeH draw the
  lower-case codes as capitals). Cross-checked: every VN3 letter agrees with
  duydev/vietnamese-conversion ``src/charsets.ts``, and "b\xb8o c\xb8o k\xd5t qu\xb6" is
  "báo cáo kết quả".
- VISCII: RFC 1456 as in glibc; lamdao/xvnkb ``viscii.h`` agrees (it leaves out the six
  upper-case letters VISCII puts at C0 control positions).
- VNI-Windows: a base letter followed by mark bytes (aù = á, aâ = â, aá = ấ, aê = ă);
  ơ ư đ and i with a tone are single bytes. From lamdao/xvnkb ``vni.h``;
  duydev/vietnamese-conversion ``src/charsets.ts`` gives the same 134 letters.
"""

from __future__ import annotations

from typing import Final

# TCVN 5712:1993 VN1, byte → character (index = byte value).
TCVN3: Final = (
    "\x00\xda\u1ee4\x03\u1eea\u1eec\u1eee\x07"  # 00: · Ú Ụ · Ừ Ử Ữ ·
    "\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"  # 08: · · · · · · · ·
    "\x10\u1ee8\u1ef0\u1ef2\u1ef6\u1ef8\xdd\u1ef4"  # 10: · Ứ Ự Ỳ Ỷ Ỹ Ý Ỵ
    "\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"  # 18: · · · · · · · ·
    " !\"#$%&'"  # 20: · ! " # $ % & '
    "()*+,-./"  # 28: ( ) * + , - . /
    "01234567"  # 30: 0 1 2 3 4 5 6 7
    "89:;<=>?"  # 38: 8 9 : ; < = > ?
    "@ABCDEFG"  # 40: @ A B C D E F G
    "HIJKLMNO"  # 48: H I J K L M N O
    "PQRSTUVW"  # 50: P Q R S T U V W
    "XYZ[\\]^_"  # 58: X Y Z [ \ ] ^ _
    "`abcdefg"  # 60: ` a b c d e f g
    "hijklmno"  # 68: h i j k l m n o
    "pqrstuvw"  # 70: p q r s t u v w
    "xyz{|}~\x7f"  # 78: x y z { | } ~ ·
    "\xc0\u1ea2\xc3\xc1\u1ea0\u1eb6\u1eac\xc8"  # 80: À Ả Ã Á Ạ Ặ Ậ È
    "\u1eba\u1ebc\xc9\u1eb8\u1ec6\xcc\u1ec8\u0128"  # 88: Ẻ Ẽ É Ẹ Ệ Ì Ỉ Ĩ
    "\xcd\u1eca\xd2\u1ece\xd5\xd3\u1ecc\u1ed8"  # 90: Í Ị Ò Ỏ Õ Ó Ọ Ộ
    "\u1edc\u1ede\u1ee0\u1eda\u1ee2\xd9\u1ee6\u0168"  # 98: Ờ Ở Ỡ Ớ Ợ Ù Ủ Ũ
    "\xa0\u0102\xc2\xca\xd4\u01a0\u01af\u0110"  # A0: · Ă Â Ê Ô Ơ Ư Đ
    "\u0103\xe2\xea\xf4\u01a1\u01b0\u0111\u1eb0"  # A8: ă â ê ô ơ ư đ Ằ
    "\u0300\u0309\u0303\u0301\u0323\xe0\u1ea3\xe3"  # B0: · · · · · à ả ã
    "\xe1\u1ea1\u1eb2\u1eb1\u1eb3\u1eb5\u1eaf\u1eb4"  # B8: á ạ Ẳ ằ ẳ ẵ ắ Ẵ
    "\u1eae\u1ea6\u1ea8\u1eaa\u1ea4\u1ec0\u1eb7\u1ea7"  # C0: Ắ Ầ Ẩ Ẫ Ấ Ề ặ ầ
    "\u1ea9\u1eab\u1ea5\u1ead\xe8\u1ec2\u1ebb\u1ebd"  # C8: ẩ ẫ ấ ậ è Ể ẻ ẽ
    "\xe9\u1eb9\u1ec1\u1ec3\u1ec5\u1ebf\u1ec7\xec"  # D0: é ẹ ề ể ễ ế ệ ì
    "\u1ec9\u1ec4\u1ebe\u1ed2\u0129\xed\u1ecb\xf2"  # D8: ỉ Ễ Ế Ồ ĩ í ị ò
    "\u1ed4\u1ecf\xf5\xf3\u1ecd\u1ed3\u1ed5\u1ed7"  # E0: Ổ ỏ õ ó ọ ồ ổ ỗ
    "\u1ed1\u1ed9\u1edd\u1edf\u1ee1\u1edb\u1ee3\xf9"  # E8: ố ộ ờ ở ỡ ớ ợ ù
    "\u1ed6\u1ee7\u0169\xfa\u1ee5\u1eeb\u1eed\u1eef"  # F0: Ỗ ủ ũ ú ụ ừ ử ữ
    "\u1ee9\u1ef1\u1ef3\u1ef7\u1ef9\xfd\u1ef5\u1ed0"  # F8: ứ ự ỳ ỷ ỹ ý ỵ Ố
)

# VISCII (RFC 1456), byte → character.
VISCII: Final = (
    "\x00\x01\u1eb2\x03\x04\u1eb4\u1eaa\x07"  # 00: · · Ẳ · · Ẵ Ẫ ·
    "\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"  # 08: · · · · · · · ·
    "\x10\x11\x12\x13\u1ef6\x15\x16\x17"  # 10: · · · · Ỷ · · ·
    "\x18\u1ef8\x1a\x1b\x1c\x1d\u1ef4\x1f"  # 18: · Ỹ · · · · Ỵ ·
    " !\"#$%&'"  # 20: · ! " # $ % & '
    "()*+,-./"  # 28: ( ) * + , - . /
    "01234567"  # 30: 0 1 2 3 4 5 6 7
    "89:;<=>?"  # 38: 8 9 : ; < = > ?
    "@ABCDEFG"  # 40: @ A B C D E F G
    "HIJKLMNO"  # 48: H I J K L M N O
    "PQRSTUVW"  # 50: P Q R S T U V W
    "XYZ[\\]^_"  # 58: X Y Z [ \ ] ^ _
    "`abcdefg"  # 60: ` a b c d e f g
    "hijklmno"  # 68: h i j k l m n o
    "pqrstuvw"  # 70: p q r s t u v w
    "xyz{|}~\x7f"  # 78: x y z { | } ~ ·
    "\u1ea0\u1eae\u1eb0\u1eb6\u1ea4\u1ea6\u1ea8\u1eac"  # 80: Ạ Ắ Ằ Ặ Ấ Ầ Ẩ Ậ
    "\u1ebc\u1eb8\u1ebe\u1ec0\u1ec2\u1ec4\u1ec6\u1ed0"  # 88: Ẽ Ẹ Ế Ề Ể Ễ Ệ Ố
    "\u1ed2\u1ed4\u1ed6\u1ed8\u1ee2\u1eda\u1edc\u1ede"  # 90: Ồ Ổ Ỗ Ộ Ợ Ớ Ờ Ở
    "\u1eca\u1ece\u1ecc\u1ec8\u1ee6\u0168\u1ee4\u1ef2"  # 98: Ị Ỏ Ọ Ỉ Ủ Ũ Ụ Ỳ
    "\xd5\u1eaf\u1eb1\u1eb7\u1ea5\u1ea7\u1ea9\u1ead"  # A0: Õ ắ ằ ặ ấ ầ ẩ ậ
    "\u1ebd\u1eb9\u1ebf\u1ec1\u1ec3\u1ec5\u1ec7\u1ed1"  # A8: ẽ ẹ ế ề ể ễ ệ ố
    "\u1ed3\u1ed5\u1ed7\u1ee0\u01a0\u1ed9\u1edd\u1edf"  # B0: ồ ổ ỗ Ỡ Ơ ộ ờ ở
    "\u1ecb\u1ef0\u1ee8\u1eea\u1eec\u01a1\u1edb\u01af"  # B8: ị Ự Ứ Ừ Ử ơ ớ Ư
    "\xc0\xc1\xc2\xc3\u1ea2\u0102\u1eb3\u1eb5"  # C0: À Á Â Ã Ả Ă ẳ ẵ
    "\xc8\xc9\xca\u1eba\xcc\xcd\u0128\u1ef3"  # C8: È É Ê Ẻ Ì Í Ĩ ỳ
    "\u0110\u1ee9\xd2\xd3\xd4\u1ea1\u1ef7\u1eeb"  # D0: Đ ứ Ò Ó Ô ạ ỷ ừ
    "\u1eed\xd9\xda\u1ef9\u1ef5\xdd\u1ee1\u01b0"  # D8: ử Ù Ú ỹ ỵ Ý ỡ ư
    "\xe0\xe1\xe2\xe3\u1ea3\u0103\u1eef\u1eab"  # E0: à á â ã ả ă ữ ẫ
    "\xe8\xe9\xea\u1ebb\xec\xed\u0129\u1ec9"  # E8: è é ê ẻ ì í ĩ ỉ
    "\u0111\u1ef1\xf2\xf3\xf4\xf5\u1ecf\u1ecd"  # F0: đ ự ò ó ô õ ỏ ọ
    "\u1ee5\xf9\xfa\u0169\u1ee7\xfd\u1ee3\u1eee"  # F8: ụ ù ú ũ ủ ý ợ Ữ
)

# Vietnamese letter → its VNI-Windows bytes, all 134 letters ASCII lacks.
VNI_WINDOWS: Final[dict[str, bytes]] = {
    "\xe0": b"a\xf8",  # à = aø
    "\xc0": b"A\xd8",  # À = AØ
    "\xe1": b"a\xf9",  # á = aù
    "\xc1": b"A\xd9",  # Á = AÙ
    "\xe2": b"a\xe2",  # â = aâ
    "\xc2": b"A\xc2",  # Â = AÂ
    "\u1ea7": b"a\xe0",  # ầ = aà
    "\u1ea6": b"A\xc0",  # Ầ = AÀ
    "\u1ea5": b"a\xe1",  # ấ = aá
    "\u1ea4": b"A\xc1",  # Ấ = AÁ
    "\u1eab": b"a\xe3",  # ẫ = aã
    "\u1eaa": b"A\xc3",  # Ẫ = AÃ
    "\u1ea9": b"a\xe5",  # ẩ = aå
    "\u1ea8": b"A\xc5",  # Ẩ = AÅ
    "\xe3": b"a\xf5",  # ã = aõ
    "\xc3": b"A\xd5",  # Ã = AÕ
    "\u0103": b"a\xea",  # ă = aê
    "\u0102": b"A\xca",  # Ă = AÊ
    "\u1eb1": b"a\xe8",  # ằ = aè
    "\u1eb0": b"A\xc8",  # Ằ = AÈ
    "\u1eaf": b"a\xe9",  # ắ = aé
    "\u1eae": b"A\xc9",  # Ắ = AÉ
    "\u1eb5": b"a\xfc",  # ẵ = aü
    "\u1eb4": b"A\xdc",  # Ẵ = AÜ
    "\u1eb3": b"a\xfa",  # ẳ = aú
    "\u1eb2": b"A\xda",  # Ẳ = AÚ
    "\u1ea3": b"a\xfb",  # ả = aû
    "\u1ea2": b"A\xdb",  # Ả = AÛ
    "\u1ea1": b"a\xef",  # ạ = aï
    "\u1ea0": b"A\xcf",  # Ạ = AÏ
    "\u1ead": b"a\xe4",  # ậ = aä
    "\u1eac": b"A\xc4",  # Ậ = AÄ
    "\u1eb7": b"a\xeb",  # ặ = aë
    "\u1eb6": b"A\xcb",  # Ặ = AË
    "\u0111": b"\xf1",  # đ = ñ
    "\u0110": b"\xd1",  # Đ = Ñ
    "\xe8": b"e\xf8",  # è = eø
    "\xc8": b"E\xd8",  # È = EØ
    "\xe9": b"e\xf9",  # é = eù
    "\xc9": b"E\xd9",  # É = EÙ
    "\xea": b"e\xe2",  # ê = eâ
    "\xca": b"E\xc2",  # Ê = EÂ
    "\u1ec1": b"e\xe0",  # ề = eà
    "\u1ec0": b"E\xc0",  # Ề = EÀ
    "\u1ebf": b"e\xe1",  # ế = eá
    "\u1ebe": b"E\xc1",  # Ế = EÁ
    "\u1ec5": b"e\xe3",  # ễ = eã
    "\u1ec4": b"E\xc3",  # Ễ = EÃ
    "\u1ec3": b"e\xe5",  # ể = eå
    "\u1ec2": b"E\xc5",  # Ể = EÅ
    "\u1ebd": b"e\xf5",  # ẽ = eõ
    "\u1ebc": b"E\xd5",  # Ẽ = EÕ
    "\u1ebb": b"e\xfb",  # ẻ = eû
    "\u1eba": b"E\xdb",  # Ẻ = EÛ
    "\u1eb9": b"e\xef",  # ẹ = eï
    "\u1eb8": b"E\xcf",  # Ẹ = EÏ
    "\u1ec7": b"e\xe4",  # ệ = eä
    "\u1ec6": b"E\xc4",  # Ệ = EÄ
    "\xec": b"\xec",  # ì = ì
    "\xcc": b"\xcc",  # Ì = Ì
    "\xed": b"\xed",  # í = í
    "\xcd": b"\xcd",  # Í = Í
    "\u0129": b"\xf3",  # ĩ = ó
    "\u0128": b"\xd3",  # Ĩ = Ó
    "\u1ec9": b"\xe6",  # ỉ = æ
    "\u1ec8": b"\xc6",  # Ỉ = Æ
    "\u1ecb": b"\xf2",  # ị = ò
    "\u1eca": b"\xd2",  # Ị = Ò
    "\xf2": b"o\xf8",  # ò = oø
    "\xd2": b"O\xd8",  # Ò = OØ
    "\xf3": b"o\xf9",  # ó = où
    "\xd3": b"O\xd9",  # Ó = OÙ
    "\xf4": b"o\xe2",  # ô = oâ
    "\xd4": b"O\xc2",  # Ô = OÂ
    "\u1ed3": b"o\xe0",  # ồ = oà
    "\u1ed2": b"O\xc0",  # Ồ = OÀ
    "\u1ed1": b"o\xe1",  # ố = oá
    "\u1ed0": b"O\xc1",  # Ố = OÁ
    "\u1ed7": b"o\xe3",  # ỗ = oã
    "\u1ed6": b"O\xc3",  # Ỗ = OÃ
    "\u1ed5": b"o\xe5",  # ổ = oå
    "\u1ed4": b"O\xc5",  # Ổ = OÅ
    "\xf5": b"o\xf5",  # õ = oõ
    "\xd5": b"O\xd5",  # Õ = OÕ
    "\u1ecf": b"o\xfb",  # ỏ = oû
    "\u1ece": b"O\xdb",  # Ỏ = OÛ
    "\u01a1": b"\xf4",  # ơ = ô
    "\u01a0": b"\xd4",  # Ơ = Ô
    "\u1edd": b"\xf4\xf8",  # ờ = ôø
    "\u1edc": b"\xd4\xd8",  # Ờ = ÔØ
    "\u1edb": b"\xf4\xf9",  # ớ = ôù
    "\u1eda": b"\xd4\xd9",  # Ớ = ÔÙ
    "\u1ee1": b"\xf4\xf5",  # ỡ = ôõ
    "\u1ee0": b"\xd4\xd5",  # Ỡ = ÔÕ
    "\u1edf": b"\xf4\xfb",  # ở = ôû
    "\u1ede": b"\xd4\xdb",  # Ở = ÔÛ
    "\u1ee3": b"\xf4\xef",  # ợ = ôï
    "\u1ee2": b"\xd4\xcf",  # Ợ = ÔÏ
    "\u1ecd": b"o\xef",  # ọ = oï
    "\u1ecc": b"O\xcf",  # Ọ = OÏ
    "\u1ed9": b"o\xe4",  # ộ = oä
    "\u1ed8": b"O\xc4",  # Ộ = OÄ
    "\xf9": b"u\xf8",  # ù = uø
    "\xd9": b"U\xd8",  # Ù = UØ
    "\xfa": b"u\xf9",  # ú = uù
    "\xda": b"U\xd9",  # Ú = UÙ
    "\u0169": b"u\xf5",  # ũ = uõ
    "\u0168": b"U\xd5",  # Ũ = UÕ
    "\u1ee7": b"u\xfb",  # ủ = uû
    "\u1ee6": b"U\xdb",  # Ủ = UÛ
    "\u01b0": b"\xf6",  # ư = ö
    "\u01af": b"\xd6",  # Ư = Ö
    "\u1eeb": b"\xf6\xf8",  # ừ = öø
    "\u1eea": b"\xd6\xd8",  # Ừ = ÖØ
    "\u1ee9": b"\xf6\xf9",  # ứ = öù
    "\u1ee8": b"\xd6\xd9",  # Ứ = ÖÙ
    "\u1eef": b"\xf6\xf5",  # ữ = öõ
    "\u1eee": b"\xd6\xd5",  # Ữ = ÖÕ
    "\u1eed": b"\xf6\xfb",  # ử = öû
    "\u1eec": b"\xd6\xdb",  # Ử = ÖÛ
    "\u1ef1": b"\xf6\xef",  # ự = öï
    "\u1ef0": b"\xd6\xcf",  # Ự = ÖÏ
    "\u1ee5": b"u\xef",  # ụ = uï
    "\u1ee4": b"U\xcf",  # Ụ = UÏ
    "\u1ef3": b"y\xf8",  # ỳ = yø
    "\u1ef2": b"Y\xd8",  # Ỳ = YØ
    "\xfd": b"y\xf9",  # ý = yù
    "\xdd": b"Y\xd9",  # Ý = YÙ
    "\u1ef9": b"y\xf5",  # ỹ = yõ
    "\u1ef8": b"Y\xd5",  # Ỹ = YÕ
    "\u1ef7": b"y\xfb",  # ỷ = yû
    "\u1ef6": b"Y\xdb",  # Ỷ = YÛ
    "\u1ef5": b"\xee",  # ỵ = î
    "\u1ef4": b"\xce",  # Ỵ = Î
}
