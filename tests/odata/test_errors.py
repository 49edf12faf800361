"""Every client mistake is an ODataError 400 whose message names what is wrong."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from auxip.api.errors import ODataError
from auxip.odata import PRODUCTS, parse_query_options

GUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
ATTR = "Attributes/OData.CSC.{cast}Attribute/any(a:a/Name eq 'x' and a/OData.CSC.{cast}Attribute/Value {cond})"

FILTER_ERRORS = [
    ("ContentLength eq 'abc'", "wrong literal type for ContentLength"),
    ("ContentLength gt 1.5", "wrong literal type for ContentLength"),
    ("Name eq 1", "wrong literal type for Name"),
    ("PublicationDate gt 'yesterday'", "wrong literal type for PublicationDate"),
    ("PublicationDate gt true", "wrong literal type for PublicationDate"),
    ("Foo eq 1", "unknown property 'Foo'"),
    ("ContentDate/Middle eq 2021-01-01T00:00:00Z", "unknown property 'ContentDate/Middle'"),
    ("Status eq OData.CSC.SubscriptionStatus'running'", "unknown property 'Status'"),
    ("PublicationDate gt 2021-02-30T00:00:00Z", "not a valid DateTimeOffset"),
    ("PublicationDate gt 2021-02-30", "not a valid date"),
    ("Name eq 'x' and", "unexpected 'and' at position 11"),
    ("Name eq 'x' and ", "unexpected 'and' at position 11"),
    ("not Name eq 'a'", "'not' binds tighter than 'eq'"),
    ("(Name eq 'x'", "ends unexpectedly"),
    ("Name eq 'unterminated", "cannot read"),
    ("Name eq 'a' Name", "unexpected"),
    ("Name eq 'a')", "unexpected"),
    ("foo(Name)", "unknown function 'foo'"),
    ("contains(Name)", "contains"),
    ("tolower(Name) eq 'x'", "needs a property on one side"),
    ("substring(Name,1) eq 'x'", "needs a property on one side"),
    ("length(Name) gt 3", "needs a property on one side"),
    ("year(PublicationDate)", "function 'year' is not supported"),
    ("contains(ContentLength,'1')", "needs a String property, ContentLength"),
    ("contains(Name,1)", "second argument of contains"),
    ("contains('S1A',Name)", "first argument of contains"),
    ("'a' eq 'b'", "needs a property on one side"),
    ("Name eq Name", "comparing two properties"),
    ("Name", "Name is a Edm.String, not a condition"),
    ("ContentLength add 1 eq 2", "needs a property on one side"),
    ("Attributes/any(a:a/Name eq 'x')", "needs a type cast segment"),
    ("Attributes/OData.CSC.FooAttribute/any(a:a/Name eq 'x')", "unknown type cast 'OData.CSC.FooAttribute'"),
    ("Attributes/StringAttribute/any(a:a/Name eq 'x')", "unknown type cast 'StringAttribute'"),
    ("Attributes/OData.CSC.StringAttribute/any(a:a/OData.CSC.IntegerAttribute/Value eq 1)", "does not match"),
    (ATTR.format(cast="Integer", cond="eq 'x'"), "wrong literal type for a/OData.CSC.IntegerAttribute/Value"),
    (ATTR.format(cast="Double", cond="eq true"), "wrong literal type"),
    (ATTR.format(cast="Boolean", cond="eq 1"), "wrong literal type"),
    (ATTR.format(cast="DateTimeOffset", cond="eq 'x'"), "wrong literal type"),
    (ATTR.format(cast="String", cond="eq 5"), "wrong literal type"),
    ("Attributes/OData.CSC.StringAttribute/any(a:a/Foo eq 'x')", "unknown property 'a/Foo'"),
    ("Attributes/OData.CSC.StringAttribute/any(a:b/Name eq 'x')", "unknown property 'b/Name'"),
    ("Attributes eq 'x'", "Attributes can only be filtered with any"),
    ("Checksum/any(c:c/Algorithm eq 'MD5')", "'Checksum' is not a collection"),
    (
        "Attributes/OData.CSC.StringAttribute/any(a:Attributes/OData.CSC.StringAttribute/any(b:b/Name eq 'x'))",
        "lambdas cannot be nested",
    ),
    ("ContentLength eq 99999999999999999999", "out of the Int64 range of ContentLength"),
    ("ContentDate/End gt null", "null can only be compared with eq or ne"),
    (f"Id gt {GUID}", "'gt' does not apply to Id"),
    ("Id eq 'not-a-guid'", "not a valid Guid"),
    ("Name in ('a', null)", "null cannot be an 'in' item"),
    ("Name in 'a'", "unexpected"),
    ("Name in (" + ",".join(f"'{i}'" for i in range(101)) + ")", "has 101 items; the limit is 100"),
    ("not " * 51 + "contains(Name,'a')", "nested more than 50 levels"),
    ("not (" * 51 + "Name eq 'a'" + ")" * 51, "parentheses are nested more than 50 levels"),
    ("(" * 51 + "Name eq 'a'" + ")" * 51, "parentheses are nested more than 50 levels"),
    ("Name eq '" + "x" * 8200 + "'", "bytes long; the limit is 8192"),
    ("", "$filter is empty"),
    ("   ", "$filter is empty"),
    ("Name eq 'a\x00'", "NUL"),
    ("Name eq '\ud800'", "not valid UTF-8"),
]


@pytest.mark.parametrize(("filter_text", "message"), FILTER_ERRORS, ids=[case[1][:60] for case in FILTER_ERRORS])
def test_filter_errors_are_400_naming_the_problem(filter_text: str, message: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_query_options({"$filter": filter_text}, PRODUCTS)
    assert caught.value.status == 400
    assert caught.value.code == "BadRequest"
    assert message in caught.value.message


OPTION_ERRORS = [
    ({"$top": "-1"}, "$top must be a non-negative integer"),
    ({"$top": "abc"}, "$top must be a non-negative integer"),
    ({"$top": ""}, "$top must be a non-negative integer"),
    ({"$top": "9" * 30}, "$top must be"),
    ({"$skip": "1.5"}, "$skip must be a non-negative integer"),
    ({"$count": "yes"}, "$count must be true or false"),
    ({"$orderby": "Foo"}, "'Foo' is not a sortable property of Products"),
    ({"$orderby": "Attributes"}, "'Attributes' is not a sortable property"),
    ({"$orderby": "Name up"}, "direction of Name must be asc or desc"),
    ({"$orderby": "Name asc desc"}, "is not '<property> [asc|desc]'"),
    ({"$orderby": ""}, "$orderby"),
    ({"$orderby": ",".join(["Name"] * 11)}, "$orderby has 11 keys"),
    ({"$expand": "Checksum"}, "$expand: 'Checksum' is not supported"),
    ({"$select": "Name,Foo"}, "$select: 'Foo' is not supported"),
    ({"$format": "xml"}, "$format 'xml' is not supported"),
    ({"$format": "application/atom+xml"}, "is not supported"),
    ({"$search": "S1A"}, "unsupported query option $search"),
    ({"$apply": "x", "$filter": "Name eq 'a'"}, "unsupported query option $apply"),
]


@pytest.mark.parametrize(("params", "message"), OPTION_ERRORS, ids=[case[1][:60] for case in OPTION_ERRORS])
def test_option_errors_are_400_naming_the_problem(params: dict[str, str], message: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_query_options(params, PRODUCTS)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_repeated_option_is_refused() -> None:
    with pytest.raises(ODataError, match=r"\$top is given more than once"):
        parse_query_options(MultiDict([("$top", "1"), ("$top", "2")]), PRODUCTS)


def test_custom_options_and_valid_values_are_accepted() -> None:
    options = parse_query_options(
        {"custom": "x", "$format": "json", "$count": "false", "$expand": "Attributes", "$top": "0"}, PRODUCTS
    )
    assert (options.count, options.expand, options.limit, options.where) == (False, frozenset({"Attributes"}), 0, None)
