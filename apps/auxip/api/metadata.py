"""The CSDL document served at `$metadata`: the entity model of the CSC Common Entity Definition (AUXIP subset).

Kept as one literal document rather than generated: it is the contract clients load, and a reviewer should be able
to read it as they will. Tests check that a generic OData v4 client can reflect it and that it names every property
the JSON serialisers emit.
"""

from __future__ import annotations

from typing import Final

CONTENT_TYPE: Final = "application/xml"

METADATA_XML: Final = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="OData.CSC">
      <EnumType Name="SubscriptionStatus">
        <Member Name="running" Value="0"/>
        <Member Name="paused" Value="1"/>
        <Member Name="cancelled" Value="2"/>
      </EnumType>
      <EnumType Name="MetricType">
        <Member Name="Gauge" Value="0"/>
        <Member Name="Counter" Value="1"/>
      </EnumType>
      <ComplexType Name="Checksum">
        <Property Name="Algorithm" Type="Edm.String" Nullable="false"/>
        <Property Name="Value" Type="Edm.String" Nullable="false"/>
        <Property Name="ChecksumDate" Type="Edm.DateTimeOffset" Nullable="false" Precision="3"/>
      </ComplexType>
      <ComplexType Name="TimeRange">
        <Property Name="Start" Type="Edm.DateTimeOffset" Nullable="false" Precision="3"/>
        <Property Name="End" Type="Edm.DateTimeOffset" Nullable="true" Precision="3"/>
      </ComplexType>
      <EntityType Name="Product" HasStream="true">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="Name" Type="Edm.String" Nullable="false"/>
        <Property Name="ContentType" Type="Edm.String" Nullable="false"/>
        <Property Name="ContentLength" Type="Edm.Int64" Nullable="false"/>
        <Property Name="OriginDate" Type="Edm.DateTimeOffset" Nullable="false" Precision="3"/>
        <Property Name="PublicationDate" Type="Edm.DateTimeOffset" Nullable="false" Precision="3"/>
        <Property Name="EvictionDate" Type="Edm.DateTimeOffset" Nullable="false" Precision="3"/>
        <Property Name="Checksum" Type="Collection(OData.CSC.Checksum)" Nullable="false"/>
        <Property Name="ContentDate" Type="OData.CSC.TimeRange" Nullable="false"/>
        <NavigationProperty Name="Attributes" Type="Collection(OData.CSC.Attribute)"/>
      </EntityType>
      <EntityType Name="Attribute" Abstract="true">
        <Key><PropertyRef Name="Name"/></Key>
        <Property Name="Name" Type="Edm.String" Nullable="false"/>
        <Property Name="ValueType" Type="Edm.String" Nullable="false"/>
      </EntityType>
      <EntityType Name="StringAttribute" BaseType="OData.CSC.Attribute">
        <Property Name="Value" Type="Edm.String" Nullable="false"/>
      </EntityType>
      <EntityType Name="IntegerAttribute" BaseType="OData.CSC.Attribute">
        <Property Name="Value" Type="Edm.Int64" Nullable="false"/>
      </EntityType>
      <EntityType Name="DoubleAttribute" BaseType="OData.CSC.Attribute">
        <Property Name="Value" Type="Edm.Double" Nullable="false"/>
      </EntityType>
      <EntityType Name="DateTimeOffsetAttribute" BaseType="OData.CSC.Attribute">
        <Property Name="Value" Type="Edm.DateTimeOffset" Nullable="false" Precision="3"/>
      </EntityType>
      <EntityType Name="BooleanAttribute" BaseType="OData.CSC.Attribute">
        <Property Name="Value" Type="Edm.Boolean" Nullable="false"/>
      </EntityType>
      <EntityType Name="Subscription">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="Status" Type="OData.CSC.SubscriptionStatus" Nullable="false"/>
        <Property Name="FilterParam" Type="Edm.String" Nullable="false"/>
        <Property Name="SubmissionDate" Type="Edm.DateTimeOffset" Nullable="false" Precision="3"/>
        <Property Name="LastNotificationDate" Type="Edm.DateTimeOffset" Nullable="true" Precision="3"/>
        <Property Name="NotificationEndpoint" Type="Edm.String" Nullable="false"/>
        <Property Name="NotificationEpUsername" Type="Edm.String" Nullable="true"/>
        <Property Name="NotificationEpPassword" Type="Edm.String" Nullable="true"/>
      </EntityType>
      <EntityType Name="Metric">
        <Key><PropertyRef Name="Name"/></Key>
        <Property Name="Name" Type="Edm.String" Nullable="false"/>
        <Property Name="Timestamp" Type="Edm.DateTimeOffset" Nullable="false" Precision="3"/>
        <Property Name="MetricType" Type="OData.CSC.MetricType" Nullable="false"/>
        <Property Name="Gauge" Type="Edm.String" Nullable="true"/>
        <Property Name="Count" Type="Edm.Int64" Nullable="true"/>
      </EntityType>
      <Action Name="Pause" IsBound="true">
        <Parameter Name="subscription" Type="OData.CSC.Subscription" Nullable="false"/>
        <ReturnType Type="OData.CSC.Subscription"/>
      </Action>
      <Action Name="Resume" IsBound="true">
        <Parameter Name="subscription" Type="OData.CSC.Subscription" Nullable="false"/>
        <ReturnType Type="OData.CSC.Subscription"/>
      </Action>
      <Action Name="Cancel" IsBound="true">
        <Parameter Name="subscription" Type="OData.CSC.Subscription" Nullable="false"/>
        <ReturnType Type="OData.CSC.Subscription"/>
      </Action>
      <EntityContainer Name="Container">
        <EntitySet Name="Products" EntityType="OData.CSC.Product">
          <NavigationPropertyBinding Path="Attributes" Target="Attributes"/>
        </EntitySet>
        <EntitySet Name="Attributes" EntityType="OData.CSC.Attribute"/>
        <EntitySet Name="Subscriptions" EntityType="OData.CSC.Subscription"/>
        <EntitySet Name="Metrics" EntityType="OData.CSC.Metric"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""
